# The indicators' compiled loops (src/tickstep/indicators.c, decision 0015): one shared
# library with no Python headers, loaded with ctypes, so it serves any Python version.
# Included by the Makefile (src/tickstep/_indicators.so for the dev tree) and by
# layers/core/Makefile (built from source into the layer). Compiled for the baseline ISA:
# the AVX2 and AVX-512 variants are target_clones inside, picked at load time, never
# -march=native (the library goes to Lambda and to other machines). No contraction and no
# fast-math: the sums keep the order written; fma() appears only where written.
# Only variables here: an included rule would become make's default target.
KERNEL_CFLAGS := -std=c99 -O3 -fPIC -shared -ffp-contract=off -fno-math-errno -Wall -Wextra

# $(call build_kernels,source.c,library.so)
build_kernels = $(CC) $(KERNEL_CFLAGS) -o $(2) $(1) -lm
