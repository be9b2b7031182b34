/** Starting DJL's PyTorch engine offline and controlling libtorch's per-thread grad mode. */
package dev.finetune.engine;
