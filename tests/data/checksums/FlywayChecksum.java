// Flyway's checksum, as flyway-core computes it (LoadableResource.calculateChecksum + BomFilter):
// read the file as text with BufferedReader.readLine (\n, \r, \r\n end a line), drop a BOM from the
// first line, feed each line's UTF-8 bytes to java.util.zip.CRC32, return (int) crc.getValue().
// Usage: java FlywayChecksum.java FILE... -> prints "name<TAB>checksum" per file.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.CRC32;

public class FlywayChecksum {
    public static void main(String[] args) throws Exception {
        for (String arg : args) {
            Path path = Path.of(arg);
            CRC32 crc32 = new CRC32();
            try (BufferedReader reader = new BufferedReader(
                    new InputStreamReader(Files.newInputStream(path), StandardCharsets.UTF_8), 4096)) {
                String line = reader.readLine();
                if (line != null) {
                    if (!line.isEmpty() && line.charAt(0) == '\uFEFF') {
                        line = line.substring(1);
                    }
                    do {
                        crc32.update(line.getBytes(StandardCharsets.UTF_8));
                    } while ((line = reader.readLine()) != null);
                }
            }
            System.out.println(path.getFileName() + "\t" + (int) crc32.getValue());
        }
    }
}
