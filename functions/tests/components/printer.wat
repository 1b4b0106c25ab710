;; "printer": over-numbers prints "hello from the guest" to stdout and returns 1;
;; over-fields prints 20 blocks of 4096 'x' (80 KiB, more than the default output
;; limit), ignoring write errors, and returns 2.
;;
;; Memory map: 16 name, 32 description, 64 the greeting, 128 write result,
;; 4096..8192 the block of 'x', 16384.. heap.
(module
  (import "wasi:cli/stdout@0.2.0" "get-stdout" (func $get_stdout (result i32)))
  (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush"
    (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.0" "[resource-drop]output-stream" (func $drop (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 16384))
  (data (i32.const 16) "printer")
  (data (i32.const 32) "Prints.")
  (data (i32.const 64) "hello from the guest\n")

  (func $realloc (export "cabi_realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))) (then unreachable))
    (local.get $ptr))

  (func (export "netnomos:aggregate/function@0.1.0#metadata") (result i32)
    (local $r i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 64)))
    (i32.store offset=0 (local.get $r) (i32.const 16))
    (i32.store offset=4 (local.get $r) (i32.const 7))
    (i32.store offset=8 (local.get $r) (i32.const 32))
    (i32.store offset=12 (local.get $r) (i32.const 7))
    (local.get $r))

  (func $print (param $ptr i32) (param $len i32)
    (local $out i32)
    (local.set $out (call $get_stdout))
    (call $write (local.get $out) (local.get $ptr) (local.get $len) (i32.const 128))
    (call $drop (local.get $out)))

  (func $ok (param $value f64) (result i32)
    (local $r i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 16)))
    (i32.store8 (local.get $r) (i32.const 0))
    (f64.store offset=8 (local.get $r) (local.get $value))
    (local.get $r))

  (func (export "netnomos:aggregate/function@0.1.0#over-numbers") (param i32 i32) (result i32)
    (call $print (i32.const 64) (i32.const 21))
    (call $ok (f64.const 1)))

  (func (export "netnomos:aggregate/function@0.1.0#over-fields") (param i32 i32) (result i32)
    (local $i i32)
    (memory.fill (i32.const 4096) (i32.const 0x78) (i32.const 4096))
    (loop $next
      (call $print (i32.const 4096) (i32.const 4096))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 20))))
    (call $ok (f64.const 2)))

  (func $reset (param i32) (global.set $heap (i32.const 16384)))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-numbers" (func $reset))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-fields" (func $reset))
)
