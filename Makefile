# aiart-lua: a Lua-scriptable tensor/autograd environment. `make help` lists the targets.
PREFIX ?= /usr/local
CC ?= gcc
PKGS := lua5.4 openblas libcjson libpng zlib readline
OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_ALL = -std=gnu11 $(OPT) -g -fPIC -fopenmp -pthread -fno-math-errno $(WARN) -Isrc $(shell pkg-config --cflags $(PKGS)) $(CFLAGS) $(EXTRA_CFLAGS)
LIBS = $(shell pkg-config --libs $(PKGS)) -lm
BUILD ?= build

CORE_SRC := src/core/alloc.c src/core/tensor.c src/core/iter.c src/core/elementwise.c \
            src/core/reduce.c src/core/matmul.c src/core/index.c src/core/random.c \
            src/core/autograd.c src/core/grad_rules.c src/core/runtime.c src/core/nn.c \
            src/core/loader.c
KERN_SRC := src/kernels/nnk.c
IO_SRC := src/io/idx.c src/io/png.c src/io/safetensors.c src/io/gif.c
LUA_SRC := src/lua/l_aiart.c src/lua/l_tensor.c src/lua/l_ops.c src/lua/l_autograd.c src/lua/l_format.c \
           src/lua/l_nn.c src/lua/l_io.c src/lua/l_json.c src/lua/l_optim.c src/lua/l_data.c
MOD_SRC := $(CORE_SRC) $(KERN_SRC) $(IO_SRC) $(LUA_SRC)
MOD_OBJ := $(MOD_SRC:%.c=$(BUILD)/%.o)

HOST_OBJ := $(BUILD)/src/host/main.o

.PHONY: all
all: aiart-lua aiart.so

AIART_BIN ?= aiart-lua
$(AIART_BIN): $(HOST_OBJ) $(MOD_OBJ)
	$(CC) -fopenmp -pthread $(EXTRA_LDFLAGS) -o $@ $^ $(LIBS) -ldl -Wl,-E

aiart.so: $(MOD_OBJ)
	$(CC) -shared -fopenmp -pthread $(EXTRA_LDFLAGS) -o $@ $^ $(shell pkg-config --libs openblas libcjson libpng zlib) -lm

$(BUILD)/%.o: %.c $(wildcard src/*/*.h) $(wildcard src/core/*.inc) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

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
CTEST_BINS := $(BUILD)/test_nnk $(BUILD)/test_io $(BUILD)/test_loader
$(BUILD)/test_loader: tests/c/test_loader.c src/core/loader.c src/core/loader.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) $(EXTRA_LDFLAGS) -o $@ tests/c/test_loader.c src/core/loader.c -lm
$(BUILD)/test_io: tests/c/test_io.c $(IO_SRC) src/io/fmt.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) $(EXTRA_LDFLAGS) -Isrc/io -o $@ tests/c/test_io.c $(IO_SRC) $(LIBS)
$(BUILD)/test_nnk: tests/c/test_nnk.c src/kernels/nnk.c src/kernels/nnk_ref.c src/kernels/nnk.h src/kernels/nnk_impl.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) $(EXTRA_LDFLAGS) -o $@ tests/c/test_nnk.c src/kernels/nnk.c src/kernels/nnk_ref.c $(LIBS)

.PHONY: test check
test: deps
	@$(MAKE) --no-print-directory all $(CTEST_BINS)
	AIART_CTESTS="$(CTEST_BINS)" ./aiart-lua tests/run.lua
check: test

# ---- sanitizers: the whole suite under AddressSanitizer + UBSan (no caching allocator)
ASAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DAI_NO_CACHE
# allocator_may_return_null: a huge tensor is a Lua error ("not enough memory"), not an abort
ASAN_RUN_OPTIONS := detect_leaks=1:abort_on_error=0:allocator_may_return_null=1:detect_stack_use_after_return=0
UBSAN_RUN_OPTIONS := print_stacktrace=1:halt_on_error=1
.PHONY: asan
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="$(ASAN_FLAGS)" EXTRA_LDFLAGS="-fsanitize=address,undefined" \
	  AIART_BIN=build-asan/aiart-lua build-asan/aiart-lua build-asan/test_nnk build-asan/test_io build-asan/test_loader
	@ln -sfn ../lua build-asan/lua # the host finds lua/aiart next to its executable
	ASAN_OPTIONS=$(ASAN_RUN_OPTIONS) UBSAN_OPTIONS=$(UBSAN_RUN_OPTIONS) LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  AIART_LUA=build-asan/aiart-lua AIART_CTESTS="build-asan/test_nnk build-asan/test_io build-asan/test_loader" build-asan/aiart-lua tests/run.lua

# ---- install
.PHONY: install
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/aiart-lua/lua/aiart
	install -m 755 aiart-lua $(DESTDIR)$(PREFIX)/bin/aiart-lua
	cp -r lua/aiart $(DESTDIR)$(PREFIX)/share/aiart-lua/lua/
	install -d $(DESTDIR)$(PREFIX)/lib/lua/5.4 $(DESTDIR)$(PREFIX)/share/lua/5.4
	install -m 755 aiart.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/aiart.so
	cp -r lua/aiart $(DESTDIR)$(PREFIX)/share/lua/5.4/

# ---- Jupyter: the aiart-lua kernel (see notebooks/README.md)
.PHONY: jupyter-kernel
jupyter-kernel: all
	sh notebooks/install-kernel.sh

.PHONY: help
help:
	@echo "make          build aiart-lua and aiart.so"
	@echo "make run      install what is missing, build, and train the default GAN"
	@echo "make test     install what is missing, build, and run every test"
	@echo "make asan     the tests under AddressSanitizer + UBSan"
	@echo "make bench    speed against PyTorch (see README)"
	@echo "make jupyter-kernel   install the aiart-lua kernel for Jupyter"
	@echo "make install PREFIX=/usr/local"

.PHONY: clean
clean:
	rm -rf build build-asan aiart-lua aiart.so
