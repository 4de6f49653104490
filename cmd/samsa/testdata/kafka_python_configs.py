# Prints a topic's configs as kafka-python's admin client describes them,
# as one JSON object: {"name": "value", ...}.
import json
import sys

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

broker, topic = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=broker, client_id="samsa-configs-test", request_timeout_ms=10000)
configs = {}
for resp in admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]):
    for res in resp.resources:
        if res[0] != 0:
            print(json.dumps({"error": res[0]}))
            sys.exit(1)
        for entry in res[4]:
            configs[entry[0]] = entry[1]
admin.close()
print(json.dumps(configs))
