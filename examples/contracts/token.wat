;; token.wat: a fungible token.
;;
;;   init(supply: u64 LE)                  mints `supply` to the deployer
;;   transfer(to: 32 bytes, amount: u64 LE) moves tokens from the caller to `to`, emits
;;                                          event topic "transfer", data from ‖ to ‖ amount LE;
;;                                          aborts "insufficient balance" if the caller has too few
;;   balance_of(addr: 32 bytes)            returns the balance as u64 LE
;;   total_supply()                        returns the supply as u64 LE
;;
;; Storage: "b" ‖ address (33 bytes) → balance (u64 LE); "supply" → total supply (u64 LE).
(module
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "storage_get" (func $storage_get (param i32 i32 i32) (result i32)))
  (import "env" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (import "env" "caller" (func $caller (param i32)))
  (import "env" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "env" "return_data" (func $return_data (param i32 i32)))
  (import "env" "abort" (func $abort (param i32 i32)))

  (memory (export "memory") 1)

  ;; Memory layout:
  ;;   0..32     the caller's address
  ;;   64..104   the input
  ;;   128..161  a storage key: "b" ‖ address
  ;;   176..184  a value buffer
  ;;   256..     constant strings
  ;;   512..584  event data: from ‖ to ‖ amount
  (data (i32.const 256) "insufficient balance")   ;; 20 bytes
  (data (i32.const 288) "transfer")               ;; 8 bytes
  (data (i32.const 304) "supply")                 ;; 6 bytes
  (data (i32.const 320) "bad input length")       ;; 16 bytes

  ;; Reads exactly `len` bytes of input to 64, or aborts.
  (func $read_input (param $len i32)
    (if (i32.ne (call $input_len) (local.get $len))
      (then (call $abort (i32.const 320) (i32.const 16))))
    (call $input_read (i32.const 64)))

  ;; Builds the balance key of the address at `addr` at 128.
  (func $balance_key (param $addr i32)
    (i32.store8 (i32.const 128) (i32.const 0x62))
    (memory.copy (i32.const 129) (local.get $addr) (i32.const 32)))

  (func $get_balance (param $addr i32) (result i64)
    (call $balance_key (local.get $addr))
    (if (result i64)
      (i32.eq (call $storage_get (i32.const 128) (i32.const 33) (i32.const 176)) (i32.const 8))
      (then (i64.load (i32.const 176)))
      (else (i64.const 0))))

  (func $set_balance (param $addr i32) (param $value i64)
    (call $balance_key (local.get $addr))
    (i64.store (i32.const 176) (local.get $value))
    (call $storage_set (i32.const 128) (i32.const 33) (i32.const 176) (i32.const 8)))

  (func $return_u64 (param $value i64)
    (i64.store (i32.const 176) (local.get $value))
    (call $return_data (i32.const 176) (i32.const 8)))

  (func (export "init")
    (call $read_input (i32.const 8))
    (call $caller (i32.const 0))
    (call $set_balance (i32.const 0) (i64.load (i32.const 64)))
    (call $storage_set (i32.const 304) (i32.const 6) (i32.const 64) (i32.const 8)))

  (func (export "transfer")
    (local $amount i64)
    (local $from_balance i64)
    (call $read_input (i32.const 40))
    (call $caller (i32.const 0))
    (local.set $amount (i64.load (i32.const 96)))
    (local.set $from_balance (call $get_balance (i32.const 0)))
    (if (i64.lt_u (local.get $from_balance) (local.get $amount))
      (then (call $abort (i32.const 256) (i32.const 20))))
    (call $set_balance (i32.const 0) (i64.sub (local.get $from_balance) (local.get $amount)))
    ;; Read the recipient after the debit, so a transfer to oneself nets to zero.
    (call $set_balance (i32.const 64)
      (i64.add (call $get_balance (i32.const 64)) (local.get $amount)))
    (memory.copy (i32.const 512) (i32.const 0) (i32.const 32))
    (memory.copy (i32.const 544) (i32.const 64) (i32.const 32))
    (i64.store (i32.const 576) (local.get $amount))
    (call $emit_event (i32.const 288) (i32.const 8) (i32.const 512) (i32.const 72)))

  (func (export "balance_of")
    (call $read_input (i32.const 32))
    (call $return_u64 (call $get_balance (i32.const 64))))

  (func (export "total_supply")
    (if (i32.eq (call $storage_get (i32.const 304) (i32.const 6) (i32.const 176)) (i32.const 8))
      (then (call $return_data (i32.const 176) (i32.const 8)))
      (else (call $return_u64 (i64.const 0))))))
