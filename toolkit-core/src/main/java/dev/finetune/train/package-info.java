/** Fine-tuning: the library front door (FineTuner), the training loop and its listeners (checkpoints, metrics, early stopping), resume, the feature cache, and the toolkit's checkpoint format. */
package dev.finetune.train;
