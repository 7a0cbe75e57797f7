// DynamoDB Local on 127.0.0.1 only, for FirmPay's local stack (local/dynamodb_local.py runs it).
//
// DynamoDB Local 3.3.1 has no listen-address option (`-help` lists -port, -inMemory, -dbPath,
// -sharedDb, -cors, -delayTransientStatuses, -disableTelemetry, -optimizeDbBeforeStartup) and its
// DynamoDBProxyServer builds Jetty's `new Server(port)`, which listens on every interface. This
// program builds the same server as the jar's own ServerRunner, points its Jetty connector at
// 127.0.0.1 before starting it, and exits when the process that started it goes away (even
// after a SIGKILL), as every other child of the local stack does. Run in Java's source-file mode
// (JEP 330) with the jar on the class path, so a JRE is all it needs:
//   java -Djava.library.path=<DynamoDBLocal_lib> -cp DynamoDBLocal.jar DynamoDBLocalOnLoopback.java \
//        <parent pid> -inMemory -port N -disableTelemetry
import java.lang.reflect.Field;
import java.util.Arrays;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class DynamoDBLocalOnLoopback {
    public static void main(String[] args) throws Exception {
        long parent = Long.parseLong(args[0]);
        String[] options = Arrays.copyOfRange(args, 1, args.length);
        watchParent(parent);
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(options);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        for (Connector connector : jetty.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on 127.0.0.1 " + String.join(" ", options));
        proxy.join();
    }

    /** Halts this JVM once `parent` is no longer its parent (it died; we were re-parented). */
    private static void watchParent(long parent) {
        Thread watch = new Thread(() -> {
            while (ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(-1L) == parent) {
                try {
                    Thread.sleep(500);
                } catch (InterruptedException stop) {
                    return;
                }
            }
            Runtime.getRuntime().halt(1);
        }, "parent-watch");
        watch.setDaemon(true);
        watch.start();
    }
}
