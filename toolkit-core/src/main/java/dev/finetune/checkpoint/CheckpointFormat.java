package dev.finetune.checkpoint;

/** The file formats {@link Checkpoints#read(java.nio.file.Path)} recognises by their content. */
public enum CheckpointFormat {
    /** A PyTorch {@code torch.save} zip (PyTorch 1.6 and later) holding a state_dict, as torchvision publishes. */
    PYTORCH_PTH,
    /** A safetensors file: a JSON header and raw little-endian tensor data, nothing executable. */
    SAFETENSORS,
    /**
     * This toolkit's own checkpoint: a safetensors file whose {@code __metadata__} has
     * {@code "format": "finetune-checkpoint"}; the rest of the metadata is the toolkit's (run, step, version).
     */
    FINETUNE
}
