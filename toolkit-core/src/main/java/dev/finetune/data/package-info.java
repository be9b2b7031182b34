/**
 * Training and validation data: reading it, checking it, and turning it into batches of tensors.
 *
 * <p>Two sources are supported: IDX files (MNIST, Fashion-MNIST; {@link dev.finetune.data.IdxReader},
 * {@link dev.finetune.data.IdxImageDataset}) and image folders in torchvision's {@code ImageFolder} layout
 * ({@link dev.finetune.data.ImageFolderIndex}, {@link dev.finetune.data.ImageFolderDataset}). Both are seen by the
 * rest of the toolkit as an {@link dev.finetune.data.ImageDataset}. {@link dev.finetune.data.TransformSpec} describes
 * the torchvision-style preprocessing and augmentation, and {@link dev.finetune.data.BatchLoader} decodes and
 * transforms samples on a thread pool, producing {@link dev.finetune.data.LoadedBatch}es in a deterministic order.
 *
 * <p>Preprocessing equals torchvision 0.14 on Pillow 9.4 bit for bit: {@link dev.finetune.data.ImageDecoder} gives
 * the pixels of {@code PIL.Image.open(f).convert("RGB")}, and {@link dev.finetune.data.PilTransforms} does
 * {@code Resize}, {@code CenterCrop}, {@code RandomResizedCrop}'s crop, {@code ToTensor} and {@code Normalize} with
 * Pillow's fixed-point bilinear resampling and torch's float32 arithmetic.
 *
 * <p>Every problem with the user's data is a {@link dev.finetune.data.DataException} (exit code of
 * {@link dev.finetune.ErrorKind#DATA}) whose message starts with the offending file or folder and ends with the fix.
 */
package dev.finetune.data;
