;; "probe": over-numbers returns
;;   (environment variables) + 10 * (arguments) + 100 * (preopened directories)
;;   + 1000 * (1 if the wall clock is not at the epoch)
;; which is 0 in a sandbox that grants nothing.  over-fields returns a random u64
;; (as f64), to show that randomness is deterministic.
;;
;; Memory map: 16 name, 32 description, 64.. return areas, 1024.. heap.
(module
  (import "wasi:cli/environment@0.2.0" "get-environment" (func $env (param i32)))
  (import "wasi:cli/environment@0.2.0" "get-arguments" (func $args (param i32)))
  (import "wasi:filesystem/preopens@0.2.0" "get-directories" (func $dirs (param i32)))
  (import "wasi:clocks/wall-clock@0.2.0" "now" (func $now (param i32)))
  (import "wasi:random/random@0.2.0" "get-random-u64" (func $random (result i64)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 16) "probe")
  (data (i32.const 32) "Looks around.")

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
    (i32.store offset=4 (local.get $r) (i32.const 5))
    (i32.store offset=8 (local.get $r) (i32.const 32))
    (i32.store offset=12 (local.get $r) (i32.const 13))
    (local.get $r))

  (func $ok (param $value f64) (result i32)
    (local $r i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 16)))
    (i32.store8 (local.get $r) (i32.const 0))
    (f64.store offset=8 (local.get $r) (local.get $value))
    (local.get $r))

  (func (export "netnomos:aggregate/function@0.1.0#over-numbers") (param i32 i32) (result i32)
    (local $score i32)
    ;; Each list comes back as (ptr, len) in a return area; count = len.
    (call $env (i32.const 64))
    (local.set $score (i32.load offset=4 (i32.const 64)))
    (call $args (i32.const 72))
    (local.set $score (i32.add (local.get $score)
      (i32.mul (i32.load offset=4 (i32.const 72)) (i32.const 10))))
    (call $dirs (i32.const 80))
    (local.set $score (i32.add (local.get $score)
      (i32.mul (i32.load offset=4 (i32.const 80)) (i32.const 100))))
    ;; datetime: seconds (u64) at 0, nanoseconds (u32) at 8.
    (call $now (i32.const 96))
    (if (i32.or (i64.ne (i64.load (i32.const 96)) (i64.const 0))
                (i32.ne (i32.load offset=8 (i32.const 96)) (i32.const 0)))
      (then (local.set $score (i32.add (local.get $score) (i32.const 1000)))))
    (call $ok (f64.convert_i32_u (local.get $score))))

  (func (export "netnomos:aggregate/function@0.1.0#over-fields") (param i32 i32) (result i32)
    (call $ok (f64.convert_i64_u (call $random))))

  (func $reset (param i32) (global.set $heap (i32.const 1024)))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-numbers" (func $reset))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-fields" (func $reset))
)
