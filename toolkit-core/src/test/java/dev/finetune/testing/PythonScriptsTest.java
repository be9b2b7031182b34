package dev.finetune.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A script run through the fork server ({@link PythonScripts#run}) behaves as the same script run as its own process:
 * the same stdout, stderr and exit status, its arguments, working directory and environment, its own folder on
 * sys.path (for a sibling module), torch's default thread count, and a traceback with status 1 on an exception;
 * and, as separate processes, each run its own random seed (torch's default generator draws one from the system).
 */
class PythonScriptsTest {
    @TempDir
    Path tmp;

    private static String withoutSeed(String stderr) {
        return stderr.replaceAll("(?m)^seed \\d+$", "seed");
    }

    @Test
    void throughTheServerAsItsOwnProcess() throws Exception {
        Files.writeString(tmp.resolve("sibling.py"), "VALUE = 'from the sibling'\n");
        Path script = tmp.resolve("probe.py");
        Files.writeString(script, String.join("\n",
                "import os, sys, torch",
                "from sibling import VALUE",
                "print('argv', sys.argv[1:])",
                "print('cwd', os.getcwd())",
                "print('omp', os.environ.get('OMP_WAIT_POLICY'))",
                "print('name', __name__, VALUE)",
                "print('threads', torch.get_num_threads())",
                "print('seed', torch.initial_seed(), file=sys.stderr)",
                "print('to stderr', file=sys.stderr)",
                "if sys.argv[1] == 'raise':",
                "    raise ValueError('raised')",
                "sys.exit(int(sys.argv[1]))",
                ""));
        java.util.Set<String> seeds = new java.util.HashSet<>();
        for (String arg : List.of("3", "raise")) {
            PythonScripts.Run direct = PythonScripts.direct(List.of(script.toString(), arg), 120);
            PythonScripts.Run served = PythonScripts.run(List.of(script.toString(), arg), 120);
            assertEquals(direct.exitCode(), served.exitCode(), "argument " + arg);
            assertEquals(direct.stdout(), served.stdout(), "argument " + arg);
            assertEquals(withoutSeed(direct.stderr()), withoutSeed(served.stderr()), "argument " + arg);
            seeds.add(served.stderr().lines().filter(l -> l.startsWith("seed ")).findFirst().orElseThrow());
            if (arg.equals("raise")) {
                assertEquals(1, served.exitCode());
                assertTrue(served.stderr().contains("ValueError: raised"), served.stderr());
            }
            assertTrue(served.stdout().contains("name __main__ from the sibling"), served.stdout());
            assertTrue(served.stdout().contains("omp PASSIVE"), served.stdout());
        }
        assertEquals(2, seeds.size(), "each served run its own seed: " + seeds);
    }
}
