.PHONY: run test bench build load perf

# Run Parley with the embedded store (set REDIS_URL for a real Redis).
run:
	go run ./cmd/parley serve

# Every check: gofmt, go vet, go test -race against a real redis-server.
test:
	bash scripts/test.sh

build:
	CGO_ENABLED=0 go build -trimpath -o bin/parley ./cmd/parley

# Go benchmarks of the hot paths (see docs/benchmarks.md).
bench:
	go test -run '^$$' -bench . -benchmem ./sandbox/ ./engine/ ./intents/nlu/

# HTTP load test of the web channel against a real Redis; `make perf` compares it with a floor and peers (see docs/benchmarks.md).
load:
	bash scripts/load.sh

# Parley beside the floor and the peers, web channel then Alexa (see docs/benchmarks.md).
perf:
	bash scripts/perf.sh web
	bash scripts/perf.sh alexa
