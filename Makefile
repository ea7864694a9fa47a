# aiart-lua: a Lua-scriptable tensor/autograd environment. `make help` lists the targets.
PREFIX ?= /usr/local
CC ?= gcc
PKGS := lua5.4 openblas libcjson libpng zlib readline
OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_ALL = -std=gnu11 $(OPT) -g -fPIC -fopenmp $(WARN) $(shell pkg-config --cflags $(PKGS)) $(CFLAGS) $(EXTRA_CFLAGS)
LIBS = $(shell pkg-config --libs $(PKGS)) -lm
BUILD ?= build

CORE_SRC := src/core/alloc.c src/core/tensor.c src/core/iter.c src/core/elementwise.c \
            src/core/reduce.c src/core/matmul.c src/core/index.c src/core/random.c \
            src/core/autograd.c src/core/grad_rules.c src/core/runtime.c src/core/nn.c
KERN_SRC := src/kernels/nnk.c
LUA_SRC := src/lua/l_aiart.c src/lua/l_tensor.c src/lua/l_ops.c src/lua/l_autograd.c src/lua/l_format.c
MOD_SRC := $(CORE_SRC) $(KERN_SRC) $(LUA_SRC)
MOD_OBJ := $(MOD_SRC:%.c=$(BUILD)/%.o)

HOST_OBJ := $(BUILD)/src/host/main.o

.PHONY: all
all: aiart-lua aiart.so

aiart-lua: $(HOST_OBJ) $(MOD_OBJ)
	$(CC) -fopenmp -o $@ $^ $(LIBS) $(shell pkg-config --libs readline) -ldl -Wl,-E

aiart.so: $(MOD_OBJ)
	$(CC) -shared -fopenmp -o $@ $^ $(shell pkg-config --libs openblas libcjson libpng zlib) -lm

$(BUILD)/%.o: %.c $(wildcard src/*/*.h) $(wildcard src/core/*.inc)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libaiart.a: $(MOD_OBJ)
	ar rcs $@ $^

.PHONY: clean
clean:
	rm -rf build build-asan aiart-lua aiart.so
