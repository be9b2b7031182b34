#!/usr/bin/env bash
# spark-submit without a Spark installation: runs Spark's own entry point (org.apache.spark.deploy.SparkSubmit, what
# the spark-submit script runs) with Spark 4.0.1's jars from Maven Central, for local masters. On a cluster use its
# spark-submit. Example (docs/scale.md):
#   mvn -Pspark-dist -pl toolkit-spark -am package -DskipTests
#   scripts/spark/spark-submit.sh --master 'local[2]' --class dev.finetune.spark.SparkFeatures \
#     toolkit-spark/target/toolkit-spark-0.1.0-SNAPSHOT-all.jar "$PWD/configs/quickstart.yaml" /tmp/store
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CP_FILE="$HERE/target/spark-classpath.txt"
if [ ! -s "$CP_FILE" ]; then
  mkdir -p "$HERE/target"
  (cd "$HERE" && mvn -q -B dependency:build-classpath -Dmdep.outputFile="$CP_FILE") >&2
fi
# The JVM options Spark's launcher adds on Java 17.
exec java -Xmx4g -Dai.djl.offline=true -Djdk.reflect.useDirectMethodHandle=false \
  -Dio.netty.tryReflectionSetAccessible=true \
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED \
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED \
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED \
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED \
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED \
  -cp "$(cat "$CP_FILE")" org.apache.spark.deploy.SparkSubmit "$@"
