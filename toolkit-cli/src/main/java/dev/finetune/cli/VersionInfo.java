package dev.finetune.cli;

import dev.finetune.Versions;
import picocli.CommandLine;

/** {@code finetune --version}: the toolkit's, DJL's and libtorch's versions. */
public final class VersionInfo implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
        return new String[] {"finetune " + Versions.toolkit(), "DJL " + Versions.djl(), "libtorch (bundled) "
                + Versions.libtorchBundled()};
    }
}
