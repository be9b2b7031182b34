/** Loading checkpoint tensors into a model by name: key mapping (wrapper prefixes, a configured prefix, regex remaps), the load report, and exporting a model as a torchvision state_dict. */
package dev.finetune.weights;
