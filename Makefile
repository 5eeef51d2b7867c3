.PHONY: run test bench build load

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

# HTTP load test of the web channel against a real Redis (see docs/benchmarks.md).
load:
	bash scripts/load.sh
