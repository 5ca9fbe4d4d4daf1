# Sourced by the other scripts: where things are cached and which tools
# build the test kernel (see Documentation/ext4-defrag/test-kernel.rst).
E4D_CACHE=${E4D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ext4-defrag}
E4D_BINDGEN=$E4D_CACHE/bindgen/bin/bindgen
E4D_KMAKE="LLVM=-19 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=$E4D_BINDGEN"
