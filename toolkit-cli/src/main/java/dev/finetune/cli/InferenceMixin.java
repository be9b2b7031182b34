package dev.finetune.cli;

import dev.finetune.model.Precision;
import dev.finetune.predict.TrainedModel;
import dev.finetune.predict.Tta;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/**
 * The inference options {@code predict} and {@code evaluate} share: test-time augmentation, BN folding, precision,
 * batch size.
 */
final class InferenceMixin {
    @Option(names = "--fold-bn", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "run every stage before the head BN-folded (for ResNets channels-last on batches of at least"
                    + " 131,072 input pixels, NCHW below) behind the fast-path guard, which checks it against the plain"
                    + " network on each new input shape; --no-fold-bn runs the plain network (default: folded)")
    boolean foldBn;

    @Option(names = "--precision", defaultValue = "fp32", description = "fp32, or bf16: everything before the head"
            + " BN-folded in bfloat16, checked against float32 on the first batch of each shape (ResNet family, CPUs with"
            + " avx512_bf16 or amx_bf16) (${DEFAULT-VALUE})")
    String precision;

    @Option(names = "--tta", defaultValue = "none", description = "test-time augmentation, probabilities averaged"
            + " over the views: none, flip (image and mirror) or five-crop (torchvision's FiveCrop; needs a model"
            + " that resizes to more than it crops) (${DEFAULT-VALUE})")
    String tta;

    @Option(names = "--batch-size", defaultValue = "64", description = "images per forward pass, test-time"
            + " augmentation's views included (${DEFAULT-VALUE})")
    int batchSize;

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandSpec command;

    /** {@code --precision}; anything but fp32 or bf16 is a usage error. */
    Precision precision() {
        try {
            return Precision.parseInference(precision);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(command.commandLine(), "--precision " + e.getMessage());
        }
    }

    /** {@code --tta}; anything but none, flip or five-crop is a usage error listing the choices. */
    Tta tta() {
        Tta t = Tta.parse(tta);
        if (t == null) {
            throw new CommandLine.ParameterException(command.commandLine(), "--tta must be none, flip or five-crop,"
                    + " found '" + tta + "'");
        }
        return t;
    }

    /** {@code --batch-size}; below 1 is a usage error. */
    int batchSize() {
        if (batchSize < 1) {
            throw new CommandLine.ParameterException(command.commandLine(), "--batch-size must be >= 1, found "
                    + batchSize);
        }
        return batchSize;
    }

    /**
     * {@code checkpoint} opened for inference as these options say (BN folding, precision); closed again when an option
     * is refused for it (bf16 on a CPU without it, say).
     */
    TrainedModel open(String checkpoint, String arch) {
        Precision p = precision();
        TrainedModel model = TrainedModel.open(checkpoint, arch);
        try {
            return model.foldBatchNorm(foldBn).precision(p);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }
}
