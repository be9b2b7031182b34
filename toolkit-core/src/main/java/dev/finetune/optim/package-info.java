/** Optimizers over exactly the trainable parameters (SGD, Adam, AdamW, following torch.optim), with parameter groups by name pattern. */
package dev.finetune.optim;
