# mixmatch: K2K federation proxy for Glance, Cinder and Neutron.
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X mixmatch/app/version.Version=$(VERSION)
BINARIES  := bin/mixmatch-fcgi bin/mixmatch-ingester bin/mixmatch-manage
RUN_ADDR  ?= 127.0.0.1:5001
# Every test, the database engines included; scripts/test-services.sh makes sure the
# servers they need are installed and running.
TEST_FLAGS ?= -race -shuffle=on -count=1 -timeout 8m

.PHONY: build test run demo e2e tempest bench bench-load fuzz lint sample clean

build: $(BINARIES)

bin/mixmatch-fcgi: FORCE
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./fcgi
bin/mixmatch-%: FORCE
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./app/cmd/mixmatch-$*
FORCE:

test:
	scripts/test-services.sh
	$(GO) test $(TEST_FLAGS) ./...

# A worker on the built-in defaults: SQLite under ./var, a local cloud on loopback.
run: build
	bin/mixmatch-manage db_sync
	exec bin/mixmatch-fcgi --http $(RUN_ADDR)

# A local federation of two real clouds (Keystone, Glance, Cinder; the remote Keystone
# a K2K SP behind Apache and Shibboleth), RabbitMQ, mixmatch in the catalog.
# `make demo` leaves it running in ./var/demo.
e2e: build
	scripts/e2e.sh

# Tempest's image and volume API tests (tempest.api.image.v2, tempest.api.volume)
# and Nova's volume tests (tempest.api.compute.volumes) through mixmatch and then
# against the same Glance and Cinder directly, on a
# federation of its own; fails unless every test ends the same way in both runs.
# Results and logs in ./var/tempest.
tempest: build
	scripts/tempest.sh

demo: build
	scripts/federation.sh stop var/demo
	scripts/federation.sh start var/demo
	scripts/demo-help.sh var/demo

bench:
	scripts/test-services.sh
	scripts/bench.sh

# Ten minutes of mixed API calls (200/s) and notifications (500/s) against the real
# worker and ingester; LOAD_DURATION, LOAD_RATE and LOAD_NOTIFY_RATE change the run.
bench-load:
	scripts/test-services.sh
	scripts/bench-load.sh

# Every fuzz target for FUZZTIME (30s) each. `make test` replays the committed seeds
# and any failing input kept in testdata/fuzz.
fuzz:
	scripts/fuzz.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The sample is generated from the option table; a test fails when it drifts.
sample: bin/mixmatch-manage
	bin/mixmatch-manage config-sample > etc/mixmatch.conf.sample

clean:
	rm -rf bin var
