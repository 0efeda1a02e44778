# sparkernel: a Jupyter kernel in C for PySpark on a Spark standalone cluster.
#   make            build build/bin/sparkernel and the kernelspec under build/share/jupyter
#   make test       unit, integration, sanitizer, chart and fuzz tests (what CI runs)
#   make asan       the same kernel with AddressSanitizer and UBSan, under build-asan/
#   make run        the main job (see README.md)
#   make lab        JupyterLab with the kernel and the notebooks on a local cluster
#   make bench      benchmarks against ipykernel; writes tests/bench/results.md
#   make soak       10,000 checked requests: kernel RSS, then valgrind memcheck;
#                   writes tests/soak/results.md
#   make install PREFIX=/usr/local

PREFIX   ?= /usr/local
SHELL    := /bin/bash
CC       ?= cc
PKGS     := libzmq jansson libsodium
# libcurl: headers at build time, the library loaded on first use (driver/curl_lazy.c).
CURL_CFLAGS := $(shell pkg-config --cflags libcurl)
VENV     ?= $(CURDIR)/.venv
PYTHON   ?= $(VENV)/bin/python
BUILD    ?= build
SANITIZE ?=

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
OPT      ?= -O2 -g
# The project's flags always apply; CFLAGS/LDFLAGS from the command line add to them.
override CFLAGS  := $(OPT) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
                    -Wno-unused-parameter -Wno-format-truncation $(PKG_CFLAGS) $(CURL_CFLAGS) $(SANITIZE) $(CFLAGS)
override LDFLAGS := -Wl,--as-needed $(SANITIZE) $(LDFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -ldl

KERNEL_SRC := kernel/log.c kernel/connection.c kernel/auth.c kernel/wire.c kernel/message.c \
              kernel/heartbeat.c kernel/utf8.c kernel/history.c kernel/iopub.c \
              kernel/dispatch.c kernel/execution.c kernel/loop.c
DRIVER_SRC := driver/frame.c driver/executor.c driver/curl_lazy.c driver/http.c driver/settings.c driver/ports.c \
              driver/master.c driver/magics.c driver/progress.c driver/sharing.c driver/spark.c
LIB_SRC    := $(KERNEL_SRC) $(DRIVER_SRC)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   := $(BUILD)/obj/kernel/main.o
BIN        := $(BUILD)/bin/sparkernel
SPEC_DIR   := $(BUILD)/share/jupyter/kernels/sparkernel
PYDIR      := $(CURDIR)/driver/python

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(BUILD)/tests/unit_tests
PROBE_BIN  := $(BUILD)/bin/master_probe

.PHONY: all kernelspec test unit integration test-compat asan charts run lab bench bench-kernel bench-spark bench-sharing bench-notebooks soak fuzz install \
        clean format \
        format-check cluster-start cluster-stop

all: $(BIN) kernelspec

$(BUILD)/obj/%.o: %.c $(wildcard kernel/*.h driver/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSPARKERNEL_PYDIR='"$(PYDIR)"' -c $< -o $@

$(BIN): $(LIB_OBJ) $(MAIN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The kernelspec points at this build: JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter finds it.
kernelspec: $(BIN)
	@mkdir -p $(SPEC_DIR)
	$(PYTHON) kernelspec/render.py --bin $(CURDIR)/$(BIN) --python $(PYTHON) \
	    --pythonpath $(PYDIR) --out $(SPEC_DIR)

$(UNIT_BIN): $(UNIT_SRC) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-field-initializers -o $@ $(UNIT_SRC) $(LIB_OBJ) \
	    $(LDFLAGS) $(LDLIBS) -lcriterion

# driver/master.c from the command line, for tests/integration/test_master_live.py.
$(PROBE_BIN): tests/support/master_probe.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# Criterion workers report leaks and UB on stderr without failing the test: the log is
# checked too, so a sanitizer report fails the target.
unit: $(UNIT_BIN)
	@set -o pipefail; $(UNIT_BIN) --jobs 2 2>&1 | tee $(BUILD)/tests/unit.log
	@! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" $(BUILD)/tests/unit.log

integration: all $(PROBE_BIN)
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) -m pytest -q tests/integration

# The driver suite against PySpark 3.5 (the original cluster's images), in its own venv:
# the kernel's executor, the cluster the tests start and the clients all run 3.5.
COMPAT_VENV  ?= .venv-compat
COMPAT_TESTS := tests/integration/test_spark_driver.py tests/integration/test_spark_cases.py \
                tests/integration/test_executor_spark.py tests/integration/test_cds.py

$(COMPAT_VENV)/.installed: requirements-compat.txt
	[ -x $(COMPAT_VENV)/bin/python ] || python3 -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-compat.txt
	touch $@

test-compat: all $(PROBE_BIN) $(COMPAT_VENV)/.installed
	@mkdir -p $(BUILD)/compat/share/jupyter/kernels/sparkernel
	$(COMPAT_VENV)/bin/python kernelspec/render.py --bin $(CURDIR)/$(BIN) \
	    --python $(CURDIR)/$(COMPAT_VENV)/bin/python --pythonpath $(PYDIR) \
	    --out $(BUILD)/compat/share/jupyter/kernels/sparkernel
	$(COMPAT_VENV)/bin/python -c 'import pyspark; assert pyspark.__version__.startswith("3.5."), pyspark.__version__'
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/compat/share/jupyter $(COMPAT_VENV)/bin/python -m pytest -q \
	    $(COMPAT_TESTS)

# The Helm chart: lint, render with several value sets, validate offline (tests/charts).
charts:
	PYTHON=$(PYTHON) bash tests/charts/run.sh

# The whole suite: README.md and .ci/run use this target.
test: unit integration test-compat asan charts fuzz

ASAN_MAKE := $(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all"

# Builds the sanitized kernel (build-asan/) and runs the unit and integration suites on it.
# Left out: the end-to-end runs of the notebooks, JupyterLab and the JVM archive (they drive
# no kernel code the other Spark tests do not, and take minutes each) and the valgrind
# soak (valgrind and ASan do not mix).
ASAN_SKIP := --ignore=tests/integration/test_notebooks.py --ignore=tests/integration/test_lab.py \
	     --ignore=tests/integration/test_cds.py --ignore=tests/integration/test_soak.py
asan:
	$(ASAN_MAKE) all unit build-asan/bin/master_probe
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	SPARKERNEL_SANITIZED=1 SPARKERNEL_BUILD_DIR=build-asan JUPYTER_PATH=$(CURDIR)/build-asan/share/jupyter \
	    $(PYTHON) -m pytest -q tests/integration $(ASAN_SKIP)

# Every benchmark: the kernel alone, Spark, three notebooks sharing a worker, the notebooks.
bench: bench-kernel bench-spark bench-sharing bench-notebooks

bench-kernel: all
	SPARKERNEL_WARM=false JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_kernel.py \
	    --out tests/bench/results.md

# Spark figures against ipykernel + PySpark on a local standalone cluster (issue 4's targets).
bench-spark: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_spark.py \
	    --out tests/bench/results-spark.md

# Three notebooks sharing one 2-core worker (issue 8's benchmark).
bench-sharing: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_sharing.py \
	    --out tests/bench/results-sharing.md

# The example notebooks end to end with nbconvert, against ipykernel + PySpark (issue 5's).
bench-notebooks: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_notebooks.py \
	    --out tests/bench/results-notebooks.md

# 10,000 mixed requests, every reply checked (tests/soak/soak.py): the kernel's RSS after 100
# and after 10,000 (within 10%), the same with store_history=False (the history ring's
# share), then under valgrind memcheck (no definite or indirect leak, ERROR SUMMARY 0).
# About 5 minutes; CI runs a smaller one (tests/integration/test_soak.py).
soak: all
	SPARKERNEL_WARM=false JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/soak/soak.py \
	    --requests 10000 --out tests/soak/results.md

run: all
	PYTHON=$(PYTHON) JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter CLUSTER_ARGS="$(CLUSTER_ARGS)" \
	    ./tests/support/run_main_job.sh

# JupyterLab on 127.0.0.1 with the kernel and notebooks/, on the local cluster (out/cluster),
# which stops when JupyterLab does. LAB_ARGS go to `jupyter lab` (e.g. --port=9999).
LAB_ARGS ?=
lab: all
	PYTHON=$(PYTHON) JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter ./tests/support/lab.sh $(LAB_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sparkernel/python/sparkernel_executor \
	    $(DESTDIR)$(PREFIX)/share/jupyter/kernels/sparkernel
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sparkernel
	install -m 644 driver/python/sparkernel_executor/*.py \
	    $(DESTDIR)$(PREFIX)/share/sparkernel/python/sparkernel_executor/
	$(PYTHON) kernelspec/render.py --bin $(PREFIX)/bin/sparkernel \
	    --python $${SPARKERNEL_INSTALL_PYTHON:-$(PYTHON)} \
	    --pythonpath $(PREFIX)/share/sparkernel/python \
	    --out $(DESTDIR)$(PREFIX)/share/jupyter/kernels/sparkernel

format:
	clang-format -i $(wildcard kernel/*.[ch] driver/*.[ch] tests/unit/*.c tests/fuzz/*.c tests/support/*.c)

format-check:
	clang-format --dry-run --Werror $(wildcard kernel/*.[ch] driver/*.[ch] tests/unit/*.c tests/fuzz/*.c tests/support/*.c)

# libFuzzer harnesses (clang), one per parser of outside bytes (tests/fuzz/fuzz_<name>.c), each
# run for FUZZ_SECONDS under ASan and UBSan (LeakSanitizer on); a crash, leak, UB report or
# input slower than FUZZ_TIMEOUT seconds fails the target. Each links only the sources it needs,
# compiled directly. make fuzz FUZZ_RUN="wire frame" runs a subset.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_NAMES   := progress wire connection frame master magics
FUZZ_RUN     ?= $(FUZZ_NAMES)
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -Wall -Wextra -Werror -Wno-unused-parameter

FUZZ_SRC_progress   := driver/progress.c kernel/log.c
FUZZ_SRC_wire       := kernel/wire.c kernel/auth.c
FUZZ_SRC_connection := kernel/connection.c
FUZZ_SRC_frame      := driver/frame.c
FUZZ_SRC_master     := driver/master.c driver/curl_lazy.c kernel/log.c
FUZZ_SRC_magics     := driver/magics.c driver/settings.c
FUZZ_PKGS_progress   := jansson
FUZZ_PKGS_wire       := jansson libzmq libsodium
FUZZ_PKGS_connection := jansson
FUZZ_PKGS_frame      := jansson
FUZZ_PKGS_master     := jansson libcurl
FUZZ_PKGS_magics     := jansson
# libcurl is loaded with dlopen (driver/curl_lazy.c): its headers only, never its library.
FUZZ_LIBS_master     := -ldl

define FUZZ_RULE
$(BUILD)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $$(wildcard kernel/*.h driver/*.h)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_FLAGS) $$(shell pkg-config --cflags $(FUZZ_PKGS_$(1))) -o $$@ \
	    tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) \
	    $$(shell pkg-config --libs $(filter-out libcurl,$(FUZZ_PKGS_$(1)))) $(FUZZ_LIBS_$(1))
endef
$(foreach f,$(FUZZ_NAMES),$(eval $(call FUZZ_RULE,$(f))))

# New inputs go to $(BUILD)/fuzz/corpus-<name>; the seeds in tests/fuzz/corpus/<name>/ stay as
# they are (tests/fuzz/make_seeds.py writes them). Every harness runs even after one fails;
# crashing inputs are kept as $(BUILD)/fuzz/<name>-crash-*.
fuzz: $(FUZZ_RUN:%=$(BUILD)/fuzz/fuzz_%)
	@failed=""; \
	for f in $(FUZZ_RUN); do \
	    mkdir -p $(BUILD)/fuzz/corpus-$$f; \
	    echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
	    $(BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
	        -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/$$f- \
	        $(BUILD)/fuzz/corpus-$$f tests/fuzz/corpus/$$f || failed="$$failed $$f"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs in $(BUILD)/fuzz/)"; exit 1; fi

# The local standalone cluster the main job and the tests use (tests/support/cluster.py).
CLUSTER_ARGS ?=
cluster-start:
	$(PYTHON) tests/support/cluster.py start $(CLUSTER_ARGS)
cluster-stop:
	$(PYTHON) tests/support/cluster.py stop $(CLUSTER_ARGS)

clean:
	rm -rf build build-asan
