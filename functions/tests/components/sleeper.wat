;; "sleeper": over-numbers sleeps forever (u64::MAX ns); over-fields sleeps values[0]
;; milliseconds and returns values[0].  The host must refuse a sleep that would end
;; after the call's deadline (it cannot interrupt a thread blocked in the host), and
;; allow a shorter one.  over-fields with no values instead subscribes to zero-length
;; sleeps without end and never drops them, filling the host's resource table.
(module
  (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration" (func $subscribe (param i64) (result i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 16) "sleeper")
  (data (i32.const 32) "Sleeps.")

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

  (func $sleep (param $ns i64)
    (local $p i32)
    (local.set $p (call $subscribe (local.get $ns)))
    (call $block (local.get $p))
    (call $drop (local.get $p)))

  (func $ok (param $value f64) (result i32)
    (local $r i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 16)))
    (i32.store8 (local.get $r) (i32.const 0))
    (f64.store offset=8 (local.get $r) (local.get $value))
    (local.get $r))

  (func (export "netnomos:aggregate/function@0.1.0#over-numbers") (param i32 i32) (result i32)
    (call $sleep (i64.const -1))
    (call $ok (f64.const 0)))

  (func (export "netnomos:aggregate/function@0.1.0#over-fields") (param $ptr i32) (param $len i32) (result i32)
    (local $ms f64)
    (if (i32.eqz (local.get $len))
      (then (loop $leak (drop (call $subscribe (i64.const 0))) (br $leak))))
    (local.set $ms (f64.load (local.get $ptr)))
    (call $sleep (i64.trunc_sat_f64_u (f64.mul (local.get $ms) (f64.const 1000000))))
    (call $ok (local.get $ms)))

  (func $reset (param i32) (global.set $heap (i32.const 1024)))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-numbers" (func $reset))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-fields" (func $reset))
)
