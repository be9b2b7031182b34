package dev.finetune.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.policy.TensorInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Trainable parameters outside a model, and an optimizer over all of them, for the optimizer tests. */
final class OptimizerFixtures {
    private OptimizerFixtures() {}

    /** A trainable DJL parameter holding {@code array}. */
    static Parameter trainable(String name, NDArray array) {
        Parameter p = Parameter.builder().setName(name).setType(Parameter.Type.WEIGHT).build();
        p.setArray(array);
        p.freeze(false);
        return p;
    }

    /** An optimizer over every parameter of {@code params} (a train-everything plan). */
    static GroupedOptimizer overAll(OptimizerSettings s, Map<String, Parameter> params, NDManager manager) {
        List<TensorInfo> infos = new ArrayList<>();
        params.forEach((n, p) -> infos.add(new TensorInfo(n, p.getShape().getShape(), false, null)));
        return GroupedOptimizer.build(s, params, FreezePolicy.trainAll().plan(infos), manager);
    }
}
