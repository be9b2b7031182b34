package dev.finetune.optim;

import ai.djl.nn.Parameter;

/**
 * One trainable parameter as the optimizer sees it.
 *
 * @param name torchvision name
 * @param parameter the DJL parameter
 * @param lrMult learning-rate multiplier from its group
 * @param weightDecay effective weight decay (0 for biases and norm parameters unless asked)
 * @param group the group that decided ({@code optimizer.groups[0]} or {@code base})
 */
public record ParamSlot(String name, Parameter parameter, double lrMult, double weightDecay, String group) {}
