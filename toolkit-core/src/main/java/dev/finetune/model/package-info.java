/** torchvision's ResNet as DJL blocks whose parameter and buffer names are torchvision's state_dict keys, with a per-layer BatchNorm mode (train / frozen statistics). */
package dev.finetune.model;
