# aiart-lua: a Lua-scriptable tensor/autograd environment. `make help` lists the targets.
PREFIX ?= /usr/local
CC ?= gcc
PKGS := lua5.4 openblas libcjson libpng zlib readline
OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_ALL = -std=gnu11 $(OPT) -g -fPIC -fopenmp -pthread -fno-math-errno -fno-trapping-math $(WARN) -Isrc $(shell pkg-config --cflags $(PKGS)) $(CFLAGS) $(EXTRA_CFLAGS) $(DIST_CFLAGS)
LIBS = $(shell pkg-config --libs $(PKGS)) -lm
BUILD ?= build

# ai.dist is built on MPI when Open MPI's development files are installed (libopenmpi-dev);
# without them it runs in single-process mode and says how to enable it. MPI=0 builds without.
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
MPI_CFLAGS := -DAI_HAVE_MPI $(shell pkg-config --cflags ompi-c)
MPI_LIBS := $(shell pkg-config --libs ompi-c)
endif

CORE_SRC := src/core/alloc.c src/core/tensor.c src/core/iter.c src/core/elementwise.c \
            src/core/reduce.c src/core/matmul.c src/core/index.c src/core/random.c \
            src/core/autograd.c src/core/grad_rules.c src/core/runtime.c src/core/nn.c \
            src/core/loader.c src/core/dist.c src/core/dist_tensor.c src/core/dist_buckets.c \
            src/core/optim.c src/core/linalg.c src/core/ops.c src/core/indexing.c src/core/sort.c \
            src/core/shape.c src/core/compare.c src/core/maths.c \
            src/core/signals.c src/core/lockfile.c
KERN_SRC := src/kernels/conv.c src/kernels/conv_transpose.c src/kernels/depthwise.c \
            src/kernels/winograd.c src/kernels/polyphase.c src/kernels/pool.c \
            src/kernels/resample.c src/kernels/norm.c src/kernels/softmax.c
IO_SRC := src/io/idx.c src/io/png.c src/io/safetensors.c src/io/gif.c
LUA_SRC := src/lua/l_aiart.c src/lua/l_tensor.c src/lua/l_ops.c src/lua/l_autograd.c src/lua/l_format.c \
           src/lua/l_nn.c src/lua/l_io.c src/lua/l_json.c src/lua/l_optim.c src/lua/l_data.c src/lua/l_dist.c \
           src/lua/l_tensor_new.c src/lua/l_tensor_view.c src/lua/l_sort.c src/lua/l_function.c \
           src/lua/l_ops_port.c src/lua/l_signal.c
MOD_SRC := $(CORE_SRC) $(KERN_SRC) $(IO_SRC) $(LUA_SRC)
MOD_OBJ := $(MOD_SRC:%.c=$(BUILD)/%.o)

HOST_OBJ := $(BUILD)/src/host/main.o

.PHONY: all
all: aiart-lua aiart.so

AIART_BIN ?= aiart-lua
$(AIART_BIN): $(HOST_OBJ) $(MOD_OBJ)
	$(CC) -fopenmp -pthread $(EXTRA_LDFLAGS) -o $@ $^ $(LIBS) $(MPI_LIBS) -ldl -Wl,-E

aiart.so: $(MOD_OBJ)
	$(CC) -shared -fopenmp -pthread $(EXTRA_LDFLAGS) -o $@ $^ $(shell pkg-config --libs openblas libcjson libpng zlib) -lm $(MPI_LIBS)

$(BUILD)/%.o: %.c $(wildcard src/*/*.h) $(wildcard src/core/*.inc) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# the elementwise loops vectorise at -O3 (a command-line OPT, as asan passes, still wins)
$(BUILD)/src/core/elementwise.o: OPT := -O3
# only the MPI glue sees mpi.h; it is rebuilt when MPI= changes
$(BUILD)/src/core/dist.o: DIST_CFLAGS := $(MPI_CFLAGS)
$(BUILD)/src/core/dist.o: $(BUILD)/mpi-$(MPI)
$(BUILD)/mpi-$(MPI):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/mpi-* && touch $@

$(BUILD)/libaiart.a: $(MOD_OBJ)
	ar rcs $@ $^

# ---- dependencies: the Debian packages, installed when missing
.PHONY: deps
deps:
	@sh scripts/install-deps.sh

# ---- the main job: train the default GAN (see README for the others)
.PHONY: run
run: deps
	@$(MAKE) --no-print-directory all
	./aiart-lua scripts/train_gan.lua

# ---- tests: C unit tests, then the Lua suite (its last line is "N passed, M failed")
IO_CTESTS := test_io_idx test_io_png test_io_safetensors
NNK_CTESTS := test_nnk_conv test_nnk_pool test_nnk_norm
CTEST_BINS := $(NNK_CTESTS:%=$(BUILD)/%) $(IO_CTESTS:%=$(BUILD)/%) $(BUILD)/test_loader
$(BUILD)/test_loader: tests/c/test_loader.c tests/c/check.h src/core/loader.c src/core/loader.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) $(EXTRA_LDFLAGS) -o $@ tests/c/test_loader.c src/core/loader.c -lm
$(BUILD)/test_io_%: tests/c/test_io_%.c tests/c/io_test.c tests/c/io_test.h tests/c/check.h $(IO_SRC) src/io/fmt.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) $(EXTRA_LDFLAGS) -Isrc/io -o $@ $< tests/c/io_test.c $(IO_SRC) $(LIBS)
# the kernel tests link the kernel objects of this build (the ones in aiart-lua) and the references
NNK_TEST_OBJ = $(KERN_SRC:%.c=$(BUILD)/%.o) $(BUILD)/src/kernels/nnk_ref.o
$(NNK_CTESTS:%=$(BUILD)/%): $(BUILD)/test_nnk_%: tests/c/test_nnk_%.c tests/c/nnk_test.h tests/c/nnk_test_tmpl.h \
  $(NNK_TEST_OBJ)
	$(CC) $(CFLAGS_ALL) $(EXTRA_LDFLAGS) -o $@ $< $(NNK_TEST_OBJ) $(LIBS)

.PHONY: test check
test: deps
	@$(MAKE) --no-print-directory all $(CTEST_BINS)
	AIART_CTESTS="$(CTEST_BINS)" ./aiart-lua tests/run.lua
check: test

# ---- sanitizers: the whole suite under AddressSanitizer + UBSan (no caching allocator)
ASAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DAI_NO_CACHE
# allocator_may_return_null: a huge tensor is a Lua error ("not enough memory"), not an abort;
# LeakSanitizer runs at exit (tests/lsan.supp may name third-party libraries only)
ASAN_RUN_OPTIONS := detect_leaks=1:abort_on_error=0:allocator_may_return_null=1:detect_stack_use_after_return=0
UBSAN_RUN_OPTIONS := print_stacktrace=1:halt_on_error=1
ASAN_CTESTS := $(NNK_CTESTS:%=build-asan/%) $(IO_CTESTS:%=build-asan/%) build-asan/test_loader
.PHONY: asan
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="$(ASAN_FLAGS)" EXTRA_LDFLAGS="-fsanitize=address,undefined" \
	  AIART_BIN=build-asan/aiart-lua build-asan/aiart-lua $(ASAN_CTESTS)
	@ln -sfn ../lua build-asan/lua # the host finds lua/aiart next to its executable
	ASAN_OPTIONS=$(ASAN_RUN_OPTIONS) UBSAN_OPTIONS=$(UBSAN_RUN_OPTIONS) LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  AIART_BADINPUT_STRIDE=8 AIART_LUA=build-asan/aiart-lua AIART_CTESTS="$(ASAN_CTESTS)" build-asan/aiart-lua tests/run.lua

# ---- valgrind: memcheck over a representative subset (plain -O1 build without the caching
# allocator, so that freed memory really is freed): tensors, autograd, a short training loop
VALGRIND_BUILD := build-valgrind
# (name fragments, as tests/run.lua takes them: every test_tensor*.lua and test_autograd*.lua)
VALGRIND_TESTS := test_tensor test_autograd
VALGRIND := valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --error-exitcode=1 --num-callers=30 \
  --suppressions=$(CURDIR)/tests/valgrind.supp
VALGRIND_ENV := AIART_NO_REEXEC=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell AIART_LUA=$(VALGRIND_BUILD)/aiart-lua
.PHONY: valgrind
valgrind: deps
	@command -v valgrind >/dev/null 2>&1 || AIART_EXTRA_PKGS=valgrind sh scripts/install-deps.sh
	@$(MAKE) --no-print-directory BUILD=$(VALGRIND_BUILD) OPT="-O1 -DAI_NO_CACHE" AIART_BIN=$(VALGRIND_BUILD)/aiart-lua \
	  $(VALGRIND_BUILD)/aiart-lua
	@ln -sfn ../lua $(VALGRIND_BUILD)/lua
	@for t in $(VALGRIND_TESTS); do \
	  echo "valgrind: tests/$$t"; \
	  $(VALGRIND_ENV) $(VALGRIND) $(VALGRIND_BUILD)/aiart-lua tests/run.lua $$t || exit 1; \
	done
	@echo "valgrind: a short training loop with checkpoints, a resume and a NaN stop"
	@rm -rf $(VALGRIND_BUILD)/train
	$(VALGRIND_ENV) $(VALGRIND) $(VALGRIND_BUILD)/aiart-lua tests/reliability/mini_train.lua steps=4 out=$(VALGRIND_BUILD)/train
	$(VALGRIND_ENV) $(VALGRIND) $(VALGRIND_BUILD)/aiart-lua tests/reliability/mini_train.lua steps=6 resume=true out=$(VALGRIND_BUILD)/train
	$(VALGRIND_ENV) $(VALGRIND) --error-exitcode=99 $(VALGRIND_BUILD)/aiart-lua tests/reliability/mini_train.lua \
	  steps=9 nan_at=8 resume=true out=$(VALGRIND_BUILD)/train; test $$? -eq 1 # the NaN stop, and no memcheck error
	@echo "valgrind: clean"

# ---- fuzzing: the libFuzzer harnesses of tests/fuzz, FUZZ_TIME seconds each (clang, installed
# when missing); every crash input lands in tests/fuzz/regressions/<target>/ (replayed by make test)
FUZZ_TIME ?= 60
FUZZ_TARGETS := idx json png safetensors
FUZZ_CC := clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
build-fuzz/fuzz_idx: tests/fuzz/fuzz_idx.c src/io/idx.c src/io/fmt.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) -Isrc/io $< src/io/idx.c $(shell pkg-config --cflags --libs zlib) -o $@
build-fuzz/fuzz_png: tests/fuzz/fuzz_png.c src/io/png.c src/io/idx.c src/io/fmt.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) -Isrc/io $< src/io/png.c src/io/idx.c $(shell pkg-config --cflags --libs libpng zlib) -o $@
build-fuzz/fuzz_safetensors: tests/fuzz/fuzz_safetensors.c src/io/safetensors.c src/io/idx.c src/io/fmt.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) -Isrc/io $< src/io/safetensors.c src/io/idx.c $(shell pkg-config --cflags --libs libcjson zlib) -lm -o $@
build-fuzz/fuzz_json: tests/fuzz/fuzz_json.c src/lua/l_json.c src/lua/lbind.h src/io/idx.c src/io/fmt.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) -Isrc/lua $< src/lua/l_json.c src/io/idx.c $(shell pkg-config --cflags --libs lua5.4 libcjson zlib) -lm -o $@
.PHONY: fuzz fuzz-deps
fuzz-deps: deps
	@command -v clang >/dev/null 2>&1 || AIART_EXTRA_PKGS=clang sh scripts/install-deps.sh
	@mkdir -p build-fuzz
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' > build-fuzz/probe.c
	@clang -fsanitize=fuzzer build-fuzz/probe.c -o build-fuzz/probe 2>/dev/null || \
	  AIART_EXTRA_PKGS="libclang-rt-$$(clang -dumpversion | cut -d. -f1)-dev" sh scripts/install-deps.sh
fuzz: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
	@sh tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_TARGETS)

# ---- reliability: the long checks (the short ones are in make test)
# killtest: train_gan.lua killed with SIGKILL 20 times (half of them mid checkpoint write),
# resumed each time: the last checkpoint loads, the losses and weights match an uninterrupted run
# soak: 10,000 mlp GAN steps in one process, RSS at step 10,000 within 5% of step 1,000
# badinput: every generated bad-input case (make test runs every 4th)
.PHONY: killtest soak badinput
killtest: all
	./aiart-lua tests/reliability/killtest.lua script=gan trials=20
soak: all
	./aiart-lua tests/reliability/soak.lua steps=10000
badinput: all
	AIART_BADINPUT_STRIDE=1 ./aiart-lua tests/run.lua test_badinput

# ---- benchmarks: the reference workloads against PyTorch (when python3-torch is installed)
# and kernel microbenchmarks, printed as a table and written to bench-results.json
# (BENCH_TORCH=0 skips installing python3-torch for the side-by-side run)
BENCH_TORCH ?= 1
.PHONY: bench
bench: all
	@[ "$(BENCH_TORCH)" = 0 ] || AIART_EXTRA_PKGS=python3-torch sh scripts/install-deps.sh
	./aiart-lua scripts/bench.lua $(BENCH_ARGS)

# data-parallel scaling of the DDPM UNet over MPI (1 and 2 ranks here, and 8 and 64 nodes on
# paper), printed and written to bench-dist-results.json
.PHONY: bench-dist
bench-dist: all
	./aiart-lua scripts/bench_dist.lua $(BENCH_ARGS)

# ---- install
.PHONY: install
# the library folders are replaced, not merged: a file left from an older install (aiart/repl.lua
# before repl/ became a folder) would be found before the new one
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/aiart-lua/lua
	install -m 755 aiart-lua $(DESTDIR)$(PREFIX)/bin/aiart-lua
	rm -rf $(DESTDIR)$(PREFIX)/share/aiart-lua/lua/aiart
	cp -r lua/aiart $(DESTDIR)$(PREFIX)/share/aiart-lua/lua/
	install -d $(DESTDIR)$(PREFIX)/lib/lua/5.4 $(DESTDIR)$(PREFIX)/share/lua/5.4
	install -m 755 aiart.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/aiart.so
	rm -rf $(DESTDIR)$(PREFIX)/share/lua/5.4/aiart
	cp -r lua/aiart $(DESTDIR)$(PREFIX)/share/lua/5.4/

# ---- Jupyter: the aiart-lua kernel (see notebooks/README.md)
.PHONY: jupyter-kernel
jupyter-kernel: all
	@AIART_EXTRA_PKGS="jupyter-notebook $(AIART_EXTRA_PKGS)" sh scripts/install-deps.sh
	sh notebooks/install-kernel.sh

.PHONY: help
help:
	@echo "make          build aiart-lua and aiart.so"
	@echo "make run      install what is missing, build, and train the default GAN"
	@echo "make test     install what is missing, build, and run every test"
	@echo "make asan     the tests under AddressSanitizer + UBSan"
	@echo "make valgrind tensors, autograd and a training loop under valgrind memcheck"
	@echo "make fuzz     the libFuzzer harnesses, FUZZ_TIME=60 seconds each"
	@echo "make killtest training killed with SIGKILL 20 times, resumed bit for bit"
	@echo "make soak     10,000 GAN steps with flat memory"
	@echo "make badinput every bad-input case (make test runs a quarter)"
	@echo "make bench    speed against PyTorch (see README)"
	@echo "make bench-dist  data-parallel scaling over MPI (see README)"
	@echo "make jupyter-kernel   install the aiart-lua kernel for Jupyter"
	@echo "make install PREFIX=/usr/local"

.PHONY: clean
clean:
	rm -rf build build-asan build-valgrind build-fuzz aiart-lua aiart.so bench-results.json bench-dist-results.json
