// The Java Kafka client against `streamkit broker`, run by tests/wire/test_java_client.py
// in source-file mode:
//   java -cp '<jars>/*' JavaClient.java BOOTSTRAP TOPIC GROUP COUNT [COMPRESSION]
//
// It creates TOPIC (3 partitions) with the Admin client, produces COUNT keyed records
// with the idempotent producer (acks=all, compression.type COMPRESSION, default none),
// then reads them in consumer group GROUP
// (subscribe, commitSync after every poll) and prints one line per record read:
//   record <partition> <offset> <key> <value>
// Exit status 0 only if every record was sent and COUNT records were read in 30 s.

import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.ArrayList;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaClient {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2];
        int count = Integer.parseInt(args[3]);
        String compression = args.length > 4 ? args[4] : "none";

        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
        }

        Properties produce = new Properties();
        produce.putAll(common);
        produce.put("enable.idempotence", "true");
        produce.put("acks", "all");
        produce.put("compression.type", compression);
        produce.put("key.serializer", StringSerializer.class.getName());
        produce.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(produce)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
            }
            for (Future<RecordMetadata> ack : sent) {
                ack.get();   // throws if the broker refused the record
            }
        }
        System.out.println("produced " + count);

        Properties consume = new Properties();
        consume.putAll(common);
        consume.put("group.id", group);
        consume.put("auto.offset.reset", "earliest");
        consume.put("enable.auto.commit", "false");
        consume.put("key.deserializer", StringDeserializer.class.getName());
        consume.put("value.deserializer", StringDeserializer.class.getName());
        int read = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consume)) {
            consumer.subscribe(List.of(topic));
            while (read < count && System.nanoTime() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : records) {
                    System.out.println("record " + r.partition() + " " + r.offset() + " "
                                       + r.key() + " " + r.value());
                    read++;
                }
                if (!records.isEmpty()) {
                    consumer.commitSync();
                }
            }
        }
        System.out.println("consumed " + read);
        System.exit(read == count ? 0 : 1);
    }
}
