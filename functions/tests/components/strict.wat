;; "strict": the sum of its inputs, but `Err("negative sample")` when one is negative.
;; Its metadata names two fields (`ingress`, `egress`), says it never decreases and
;; never goes below 0: it exercises the `fields(list<string>)` case of the record and
;; the `err` case of the result.
;;
;; Memory map:
;;   16..22   "strict"          32..76  description
;;   96..112  the fields list: two (ptr, len) pairs -> "ingress" at 128, "egress" at 136
;;   160..175 "negative sample"
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 16) "strict")
  (data (i32.const 32) "Sum of the samples; fails on a negative one.")
  (data (i32.const 96) "\80\00\00\00\07\00\00\00\88\00\00\00\06\00\00\00")
  (data (i32.const 128) "ingress")
  (data (i32.const 136) "egress")
  (data (i32.const 160) "negative sample")

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
    (i32.store offset=4 (local.get $r) (i32.const 6))
    (i32.store offset=8 (local.get $r) (i32.const 32))
    (i32.store offset=12 (local.get $r) (i32.const 44))
    (i32.store8 offset=16 (local.get $r) (i32.const 1))   ;; inputs: fields
    (i32.store offset=20 (local.get $r) (i32.const 96))   ;; the list
    (i32.store offset=24 (local.get $r) (i32.const 2))
    (i32.store8 offset=28 (local.get $r) (i32.const 1))   ;; nondecreasing
    (i32.store8 offset=32 (local.get $r) (i32.const 1))   ;; lower-bound: some(0)
    (f64.store offset=40 (local.get $r) (f64.const 0))
    (i32.store8 offset=48 (local.get $r) (i32.const 0))   ;; upper-bound: none
    (local.get $r))

  (func $sum (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $v f64) (local $sum f64) (local $r i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $v
          (f64.load (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 3)))))
        (if (f64.lt (local.get $v) (f64.const 0))
          (then
            (i32.store8 (local.get $r) (i32.const 1))
            (i32.store offset=8 (local.get $r) (i32.const 160))
            (i32.store offset=12 (local.get $r) (i32.const 15))
            (return (local.get $r))))
        (local.set $sum (f64.add (local.get $sum) (local.get $v)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store8 (local.get $r) (i32.const 0))
    (f64.store offset=8 (local.get $r) (local.get $sum))
    (local.get $r))
  (export "netnomos:aggregate/function@0.1.0#over-numbers" (func $sum))
  (export "netnomos:aggregate/function@0.1.0#over-fields" (func $sum))

  (func $reset (param i32) (global.set $heap (i32.const 1024)))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-numbers" (func $reset))
  (export "cabi_post_netnomos:aggregate/function@0.1.0#over-fields" (func $reset))
)
