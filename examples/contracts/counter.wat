;; counter.wat: one shared counter.
;;
;;   increment()  adds 1 to the counter
;;   get()        returns the counter as an 8-byte little-endian u64
;;
;; The counter lives in contract storage under the key "count" (8 bytes, LE u64).
(module
  (import "env" "storage_get" (func $storage_get (param i32 i32 i32) (result i32)))
  (import "env" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (import "env" "return_data" (func $return_data (param i32 i32)))

  (memory (export "memory") 1)

  ;; 0..5: the storage key; 16..24: the value buffer.
  (data (i32.const 0) "count")

  ;; The stored count, or 0 before the first increment.
  (func $load (result i64)
    (if (result i64)
      (i32.eq (call $storage_get (i32.const 0) (i32.const 5) (i32.const 16)) (i32.const 8))
      (then (i64.load (i32.const 16)))
      (else (i64.const 0))))

  (func (export "increment")
    (i64.store (i32.const 16) (i64.add (call $load) (i64.const 1)))
    (call $storage_set (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8)))

  (func (export "get")
    (i64.store (i32.const 16) (call $load))
    (call $return_data (i32.const 16) (i32.const 8))))
