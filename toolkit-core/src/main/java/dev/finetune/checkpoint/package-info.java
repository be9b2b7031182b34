/**
 * Reading and writing model weights without any engine: PyTorch {@code .pth} state_dicts, safetensors, and this
 * toolkit's own checkpoints, as {@link dev.finetune.checkpoint.HostTensor}s named the torchvision way.
 *
 * <p>Entry points: {@link dev.finetune.checkpoint.Checkpoints#read(String)} (a path, or
 * {@code torchvision:resnet18}), {@link dev.finetune.checkpoint.PthWriter} and
 * {@link dev.finetune.checkpoint.SafetensorsWriter}.
 *
 * <p>Checkpoints are untrusted input. A {@code .pth} is a pickle, which in Python can run any code while loading;
 * here it is read by a restricted unpickler that only builds data and refuses every global outside a state_dict's
 * needs, naming it. Every size a file claims is checked against the file before memory is allocated. This package
 * deliberately has no DJL dependency, so it can be tested and used without loading libtorch.
 */
package dev.finetune.checkpoint;
