/** Exporting a model back to PyTorch: a torchvision state_dict as .pth or safetensors, with a JSON sidecar. */
package dev.finetune.export;
