#!/usr/bin/env bash
# Installs the system programs the local stack runs, if they are missing:
# Java 17+ and Maven (Kafka from Maven Central jars), Redis, PostgreSQL (the decision ledger),
# Prometheus (promtool), OpenSSL
# (TLS tests) and Chromium with its driver (the console's browser tests).
# Debian/Ubuntu via apt-get; elsewhere it says what to install.
set -euo pipefail

need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Debian keeps the server programs in a versioned folder, off PATH.
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ ${#need[@]} -eq 0 ]; then
  echo "system: java, mvn, redis-server, postgresql, prometheus, promtool, openssl and chromium are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system: please install: ${need[*]} (no apt-get on this machine)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "system: installing ${need[*]} with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts packaged services where it can; the stack runs its own on its own ports.
for service in redis-server prometheus postgresql; do
  if command -v service >/dev/null 2>&1; then $sudo service "$service" stop >/dev/null 2>&1 || true; fi
done
echo "system: installed ${need[*]}"
