/** Inference from a checkpoint: the model with its class names and preprocessing, top-k predictions with no autograd graph, and process memory. */
package dev.finetune.predict;
