package dev.finetune.train;

import ai.djl.nn.Parameter;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.model.BnMode;
import dev.finetune.model.Network;
import dev.finetune.policy.FreezePlan;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Proof that frozen means frozen: SHA-256 of every frozen parameter and of the running statistics of every BN layer
 * in frozen-stats mode, taken before training and compared after. Any change is a hard failure naming the tensor.
 *
 * <p>Between epochs the check compares against native copies (libtorch {@code equal}: memory bandwidth, no copy to
 * the JVM); {@link #verify} does the full SHA-256 comparison, for the report at the end.
 */
public final class FrozenGuard implements AutoCloseable {
    private final Map<String, String> before;
    private final ai.djl.ndarray.NDManager copiesManager;
    private final Map<String, ai.djl.ndarray.NDArray> copies = new LinkedHashMap<>();

    private FrozenGuard(Map<String, String> before, Network model, ai.djl.ndarray.NDManager parent) {
        this.before = before;
        this.copiesManager = parent == null ? null : parent.newSubManager();
        if (copiesManager != null) {
            Map<String, Parameter> tensors = model.namedTensors();
            for (String name : before.keySet()) {
                ai.djl.ndarray.NDArray c = tensors.get(name).getArray().duplicate();
                c.attach(copiesManager);
                copies.put(name, c);
            }
        }
    }

    /** Fingerprints what {@code plan} freezes in {@code model} now. */
    public static FrozenGuard capture(Network model, FreezePlan plan) {
        return new FrozenGuard(checksums(model, plan), model, null);
    }

    /** Fingerprints and keeps native copies on {@code manager} for the fast per-epoch {@link #verifyQuick}. */
    public static FrozenGuard capture(Network model, FreezePlan plan, ai.djl.ndarray.NDManager manager) {
        return new FrozenGuard(checksums(model, plan), model, manager);
    }

    /** Compares every guarded tensor with its copy in native memory; a change is a hard failure naming it. */
    public int verifyQuick(Network model) {
        if (copiesManager == null) {
            throw new IllegalStateException("captured without native copies");
        }
        Map<String, Parameter> tensors = model.namedTensors();
        List<String> changed = new ArrayList<>();
        try (dev.finetune.engine.Engines.NoGrad g = dev.finetune.engine.Engines.noGrad()) {
            copies.forEach((name, copy) -> {
                if (!tensors.get(name).getArray().contentEquals(copy)) {
                    changed.add(name);
                }
            });
        }
        fail(changed);
        return copies.size();
    }

    @Override
    public void close() {
        if (copiesManager != null) {
            copiesManager.close();
        }
    }

    private static void fail(List<String> changed) {
        if (!changed.isEmpty()) {
            throw new FinetuneException(
                    ErrorKind.INTERNAL,
                    "invariant broken: frozen tensors changed during training: " + changed
                            + "; this is a bug in the toolkit, please report it with your config");
        }
    }

    /** Names of the guarded tensors. */
    public List<String> guarded() {
        return List.copyOf(before.keySet());
    }

    /**
     * Checks every guarded tensor is bit-identical; returns how many were checked. A changed one is a hard failure.
     */
    public int verify(Network model, FreezePlan plan) {
        Map<String, String> now = checksums(model, plan);
        List<String> changed = new ArrayList<>();
        for (Map.Entry<String, String> e : before.entrySet()) {
            String after = now.get(e.getKey());
            if (after != null && !after.equals(e.getValue())) {
                changed.add(e.getKey());
            }
        }
        fail(changed);
        return before.size();
    }

    private static Map<String, String> checksums(Network model, FreezePlan plan) {
        Map<String, Parameter> tensors = model.namedTensors();
        Map<String, String> out = new LinkedHashMap<>();
        for (FreezePlan.Decision d : plan.decisions()) {
            boolean guarded;
            if (d.tensor().buffer()) {
                String bn = d.tensor().bnModule();
                guarded = bn != null && plan.bnModes().get(bn) == BnMode.FROZEN_STATS;
            } else {
                guarded = !d.trainable();
            }
            if (guarded) {
                out.put(d.name(), sha256(tensors.get(d.name()).getArray().toFloatArray()));
            }
        }
        return out;
    }

    /** SHA-256 of the raw float bits of a tensor (bit-identical ⇔ equal hash). */
    public static String sha256(float[] values) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            ByteBuffer buf = ByteBuffer.allocate(values.length * 4);
            buf.asFloatBuffer().put(values);
            md.update(buf.array());
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
