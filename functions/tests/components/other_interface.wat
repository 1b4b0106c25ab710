;; Exports `test:other/function@0.1.0` (a `metadata` returning a string), and not the
;; aggregation interface.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "other")
  (data (i32.const 32) "\10\00\00\00\05\00\00\00")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 256))
  (func (export "test:other/function@0.1.0#metadata") (result i32) (i32.const 32))
)
