/*
 * Kafka's Java transactional producer and read_committed / read_uncommitted consumers
 * against streamkit broker, for tests/wire/test_java_transactions.py: commit 3
 * records, abort 2, leave 1 in an open transaction that a newer producer with the
 * same transactional.id fences (the old one's commit must fail), commit 1 with the
 * newer one; then each consumer reads from the start to its end offset (the last
 * stable offset for read_committed) and prints what it read and its position.
 *
 *     java -cp '<jars>/*' JavaTransactions.java <bootstrap> <topic>
 */
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.*;

public class JavaTransactions {
    static KafkaProducer<String, String> producer(String bootstrap, String id) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", id);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        producer.initTransactions();
        return producer;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        KafkaProducer<String, String> producer = producer(bootstrap, "java-tx");
        producer.beginTransaction();
        for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(topic, "kept-" + i));
        producer.commitTransaction();
        producer.beginTransaction();
        for (int i = 0; i < 2; i++) producer.send(new ProducerRecord<>(topic, "dropped-" + i));
        producer.flush();
        producer.abortTransaction();
        producer.beginTransaction();
        producer.send(new ProducerRecord<>(topic, "fenced-0"));
        producer.flush();
        KafkaProducer<String, String> newer = producer(bootstrap, "java-tx");
        try {
            producer.commitTransaction();
            System.out.println("not fenced");
        } catch (ProducerFencedException e) {
            System.out.println("fenced");
        }
        producer.close(Duration.ofSeconds(1));
        newer.beginTransaction();
        newer.send(new ProducerRecord<>(topic, "kept-3"));
        newer.commitTransaction();
        newer.close();
        for (String isolation : new String[] {"read_committed", "read_uncommitted"}) {
            Properties c = new Properties();
            c.put("bootstrap.servers", bootstrap);
            c.put("isolation.level", isolation);
            c.put("key.deserializer", StringDeserializer.class.getName());
            c.put("value.deserializer", StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
                TopicPartition tp = new TopicPartition(topic, 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                long end = consumer.endOffsets(List.of(tp)).get(tp);
                List<String> values = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 20000;
                while (consumer.position(tp) < end && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200)))
                        values.add(r.value());
                }
                System.out.println(isolation + " " + String.join(",", values) + " position "
                                   + consumer.position(tp) + " end " + end);
            }
        }
    }
}
