package dev.finetune.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.security.Permission;

/**
 * Starts the engine under a security manager that refuses, and reports, every attempt to resolve a host or open a
 * socket. Run in its own JVM with {@code -Djava.security.manager=allow} by {@link EngineOfflineTest}.
 */
public final class NoNetworkProbe {
    private NoNetworkProbe() {}

    @SuppressWarnings("removal")
    public static void main(String[] args) {
        System.setSecurityManager(new SecurityManager() {
            @Override
            public void checkPermission(Permission perm) {
                // everything else is allowed
            }

            @Override
            public void checkConnect(String host, int port) {
                System.out.println("NETWORK ATTEMPT: connect " + host + ":" + port);
                throw new SecurityException("network access attempted: " + host + ":" + port);
            }

            @Override
            public void checkConnect(String host, int port, Object context) {
                checkConnect(host, port);
            }
        });
        if (args.length > 0 && args[0].equals("--control")) {
            // Proves the guard sees a connection attempt at all.
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", 9)) {
                System.out.println("connected?!");
            } catch (Exception e) {
                System.out.println("control: " + e.getMessage());
            }
            return;
        }
        var engine = Engines.pytorch(1);
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray a = m.ones(new Shape(2, 2));
            System.out.println("engine " + engine.getEngineName() + " " + engine.getVersion() + " sum "
                    + a.sum().getFloat());
        }
    }
}
