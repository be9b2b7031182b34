/** Freeze policies: ordered rules over torchvision names (globs, module names, regexes), stage shorthands and BatchNorm behaviour, planned against a model into one decision per tensor. */
package dev.finetune.policy;
