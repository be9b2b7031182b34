package dev.finetune.data;

/** What {@link BatchLoader} does with an image that cannot be read or decoded. */
public enum BadImagePolicy {
    /** Stop with a {@link DataException} naming the file. The default: a broken file usually means a broken copy. */
    FAIL,
    /** Leave the sample out of its batch and record it in {@link SkippedImages}, so the run can report it. */
    SKIP
}
