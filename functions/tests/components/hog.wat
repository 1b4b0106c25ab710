;; "hog": grows its memory one page (64 KiB) at a time without end.  The host's memory
;; limit must stop it with a trap naming the limit (not let `memory.grow` fail).
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 16) "hog")
  (data (i32.const 32) "Eats memory.")

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
    (i32.store offset=4 (local.get $r) (i32.const 3))
    (i32.store offset=8 (local.get $r) (i32.const 32))
    (i32.store offset=12 (local.get $r) (i32.const 12))
    (local.get $r))

  (func $grow (param i32 i32) (result i32)
    (loop $again
      ;; memory.grow returns -1 once it is refused without a trap: then give up.
      (br_if $again (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
  (export "netnomos:aggregate/function@0.1.0#over-numbers" (func $grow))
  (export "netnomos:aggregate/function@0.1.0#over-fields" (func $grow))
)
