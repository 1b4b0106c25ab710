;; Burstiness (peak-to-mean ratio) as a core module for the world `aggregate` of
;; wit/aggregate.wit, written by hand against the component model's canonical ABI
;; (32-bit memory, UTF-8 strings).  The tests embed the WIT and wrap it as a component.
;;
;; Contract (as `functions::burstiness`): max / mean, where the sum runs left to right
;; and mean = sum / len; 0 for an empty list or a zero mean.
;;
;; Memory map:
;;   16..26     "burstiness"             (metadata.name)
;;   32..141    the description         (metadata.description)
;;   1024..     heap, bump-allocated by cabi_realloc, emptied after every call by the
;;              cabi_post_* functions (the host calls them once it has read the result)
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  (data (i32.const 16) "burstiness")
  (data (i32.const 32) "Peak-to-mean ratio of the values: max / mean. 0 for an empty list or when the mean is 0 (an all-zero window).")

  ;; cabi_realloc(old_ptr, old_size, align, new_size) -> ptr: a bump allocator.
  (func $realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
    (result i32)
    (local $ptr i32) (local $end i32) (local $have i32)
    ;; ptr = align_up(heap, align)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                  (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (if (local.get $old)
      (then
        (memory.copy (local.get $ptr) (local.get $old)
          (select (local.get $old_size) (local.get $size)
            (i32.lt_u (local.get $old_size) (local.get $size))))))
    (local.get $ptr))

  ;; metadata: func() -> function-metadata.  The record (size 64, align 8):
  ;;   0 name.ptr  4 name.len  8 description.ptr  12 description.len
  ;;   16 inputs tag (0 numbers, 1 fields)  20 fields.ptr  24 fields.len
  ;;   28 monotonicity (0 unknown)
  ;;   32 lower-bound tag  40 lower-bound value
  ;;   48 upper-bound tag  56 upper-bound value
  (func (export "netnomos:aggregate/function@0.1.0#metadata") (result i32)
    (local $r i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 64)))
    (i32.store offset=0 (local.get $r) (i32.const 16))
    (i32.store offset=4 (local.get $r) (i32.const 10))
    (i32.store offset=8 (local.get $r) (i32.const 32))
    (i32.store offset=12 (local.get $r) (i32.const 109))
    (i32.store8 offset=16 (local.get $r) (i32.const 0))
    (i32.store8 offset=28 (local.get $r) (i32.const 0))
    (i32.store8 offset=32 (local.get $r) (i32.const 1))
    (f64.store offset=40 (local.get $r) (f64.const 0))
    (i32.store8 offset=48 (local.get $r) (i32.const 0))
    (local.get $r))

  (func $burstiness (param $ptr i32) (param $len i32) (result f64)
    (local $i i32) (local $v f64) (local $sum f64) (local $peak f64) (local $mean f64)
    (if (i32.eqz (local.get $len)) (then (return (f64.const 0))))
    (local.set $peak (f64.load (local.get $ptr)))
    (loop $next
      (local.set $v
        (f64.load (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $sum (f64.add (local.get $sum) (local.get $v)))
      (local.set $peak (f64.max (local.get $peak) (local.get $v)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $len))))
    (local.set $mean (f64.div (local.get $sum) (f64.convert_i32_u (local.get $len))))
    (if (f64.eq (local.get $mean) (f64.const 0)) (then (return (f64.const 0))))
    (f64.div (local.get $peak) (local.get $mean)))

  ;; result<f64, string> (size 16, align 8): 0 tag (0 ok, 1 err), 8 payload.
  (func $ok (param $value f64) (result i32)
    (local $r i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 16)))
    (i32.store8 (local.get $r) (i32.const 0))
    (f64.store offset=8 (local.get $r) (local.get $value))
    (local.get $r))

  (func (export "netnomos:aggregate/function@0.1.0#over-numbers")
    (param $ptr i32) (param $len i32) (result i32)
    (call $ok (call $burstiness (local.get $ptr) (local.get $len))))

  (func (export "netnomos:aggregate/function@0.1.0#over-fields")
    (param $ptr i32) (param $len i32) (result i32)
    (call $ok (call $burstiness (local.get $ptr) (local.get $len))))

  ;; After the host has read a result, everything on the heap is garbage.
  (func $reset (param i32) (global.set $heap (i32.const 1024)))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#metadata" (func $reset))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-numbers" (func $reset))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-fields" (func $reset))
)
