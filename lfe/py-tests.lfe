;;;; lfe/py-tests.lfe -- the LFE REPL walk-through of the original LFE py
;;;; README (https://github.com/lfex/py), run against this py and checked.
;;;;
;;;; Plain LFE, no test framework. Run it from the repository root:
;;;;
;;;;     lfe -pa _build/default/lib/py/ebin -- lfe/py-tests.lfe
;;;;
;;;; (`make lfe-test` does that through lfe/run-tests.sh). Every check prints
;;;; one line, "ok" or "FAIL", with the LFE expression and its result; the
;;;; last line is "N passed, M failed"; the exit status is 1 when a check
;;;; failed (127 when the script itself crashed, as for any LFE script).
;;;;
;;;; The expressions are the original README's, in its order. Where the
;;;; original showed ErlPort's results, py returns (see the README, "API
;;;; Usage", "Differences from the original"):
;;;;   * binaries for Python strings: #"3.141592653589793", not "3.14...";
;;;;   * handles #($py TypeName Ref) for objects, not #("datetime" #(...))
;;;;     or #($erlport.opaque python #B(...));
;;;;   * maps for dicts: #M(#"a" 1 #"b" 2), not #("dict" (#("b" 2) ...)).
;;;; The original wrote string arguments as #b("/tmp"); that is the same
;;;; binary as #"/tmp", and both are used below.
;;;;
;;;; The last sections add what the original left empty: parallel calls
;;;; and a remote Python node (started with OTP's peer, on loopback).

;;; ------------------------------------------------------------------
;;; The checking machinery.
;;; ------------------------------------------------------------------

;; (check EXPR PATTERN GUARD-TEST ...)
;;
;; Evaluates EXPR and matches its value against PATTERN (an LFE pattern;
;; the GUARD-TESTs, if any, are its `when' guard: all must be true).
;; Prints "ok    EXPR => VALUE" or "FAIL  EXPR => VALUE" (or what EXPR
;; raised) and counts the result. A macro because it shows the expression
;; itself, as typed, and because a pattern (handles hold a fresh Ref each
;; time) cannot be passed to a function.
(defmacro check
  ((list* expr pattern guard-tests)
   `(run-check ',expr
               (lambda () ,expr)
               (match-lambda
                 ((,pattern) (when ,@guard-tests) 'true)
                 ((_) 'false)))))

(defun show (term) (lfe_io:prettyprint1 term 30 0 1000))

(defun count (key) (put key (+ 1 (get key))))

(defun run-check (expr thunk matches)
  (try
    (let ((value (funcall thunk)))
      (case (funcall matches value)
        ('true
         (count 'passed)
         (lfe_io:format "ok    ~s => ~s~n" (list (show expr) (show value))))
        ('false
         (count 'failed)
         (lfe_io:format "FAIL  ~s => ~s~n" (list (show expr) (show value))))))
    (catch
      ((tuple class reason _)
       (count 'failed)
       (lfe_io:format "FAIL  ~s raised ~s:~s~n"
                      (list (show expr) class (show reason)))))))

(defun note (text) (lfe_io:format "note  ~s~n" (list text)))

(defun section (title) (lfe_io:format "~n;; ~s~n" (list title)))

(put 'passed 0)
(put 'failed 0)

;;; ------------------------------------------------------------------
;;; Setup: starting py (the original: `lfetool repl lfe -s py').
;;; ------------------------------------------------------------------

(section "Setup")
(check (py:start) 'ok)

;;; ------------------------------------------------------------------
;;; Metadata
;;; ------------------------------------------------------------------

(section "Metadata")
(check (py-util:get-versions)
       (list* (tuple 'erlang _) (tuple 'emulator _) (tuple 'driver-version _)
              _))
(check (proplists:get_value 'py (py-util:get-versions)) vsn (is_list vsn))
(check (proplists:get_value 'python (py-util:get-versions))
       (cons (cons #\3 _) _))

;; py-util reports LFE "when LFE is loaded": when the module `lfe' is
;; loaded. The LFE REPL loads it (its banner calls lfe:version/0); a
;; script or `lfe -e' does not, so here we say which case we are in, then
;; load it as the REPL does and check what the REPL shows.
(case (lists:keymember 'lfe 1 (py-util:get-versions))
  ('true (note "get-versions lists lfe in an LFE script too"))
  ('false (note (++ "get-versions omits lfe in an LFE script (module lfe "
                    "not loaded; the REPL loads it); checked below as in "
                    "the REPL"))))
(code:ensure_loaded 'lfe)
(check (proplists:get_value 'lfe (py-util:get-versions))
       vsn (=:= vsn (lfe:version)))

;;; ------------------------------------------------------------------
;;; Module level: calling functions
;;; ------------------------------------------------------------------

(section "Module level: calling functions")
(check (py:func 'os 'getcwd) cwd (=:= (tuple 'ok (binary_to_list cwd))
                                      (file:get_cwd)))
(check (py:func 'os 'getcwd '() '() '(#(strings charlist)))
       cwd (=:= (tuple 'ok cwd) (file:get_cwd)))
(check (py:func 'datetime.datetime 'now)
       (tuple '$py #"datetime.datetime" ref) (is_reference ref))
(check (py:func 'os.path 'isfile '(#b("/tmp"))) 'false)
(check (py:func 'os.path 'isdir '(#b("/tmp"))) 'true)
(check (py:func 'os.path 'isdir '(#"/tmp")) 'true)
(check (py:func 'builtins 'int '(#b("101010")) '(#(base 2))) 42)

;;; ------------------------------------------------------------------
;;; Module level: constants
;;; ------------------------------------------------------------------

(section "Module level: constants")
(check (py:const 'math 'pi) 3.141592653589793)
(check (py:const 'math 'pi 'float) 3.141592653589793)
(check (py:const 'math 'pi 'int) 3)
(check (py:const 'math 'pi 'str) #"3.141592653589793")

;;; ------------------------------------------------------------------
;;; Objects: instantiation
;;; ------------------------------------------------------------------

(section "Objects: instantiation")
(check (py:init 'builtins 'dict) (tuple '$py #"dict" _))
(check (py:value (py:init 'builtins 'dict)) (map))
(check (py:init 'collections 'UserDict)
       (tuple '$py #"collections.UserDict" _))
(check (py:init 'datetime 'date '(1923 4 2)) (tuple '$py #"datetime.date" _))
(check (py:str (py:init 'datetime 'date '(1923 4 2))) #"1923-04-02")

;;; ------------------------------------------------------------------
;;; Objects: methods, attributes, operations
;;; ------------------------------------------------------------------

(section "Objects: methods and attributes")
(set now (py:func 'datetime.datetime 'now))
(check now (tuple '$py #"datetime.datetime" _))
(check (py:method now 'strftime '(#b("%Y.%m.%d %H:%M:%S")))
       (binary (year bytes (size 4)) (_ bytes (size 15)))
       (=:= year (integer_to_binary (py:attr now 'year))))
(check (py:attr now 'year) year (is_integer year) (> year 2000))
(check (py:attr now 'microsecond) us (>= us 0) (< us 1000000))

(section "Objects: operations")
(set later (py:func 'datetime.datetime 'now))
(set earlier now)
(set diff (py:sub later earlier))
(check diff (tuple '$py #"datetime.timedelta" _))
(check (py:attr diff 'seconds) s (is_integer s) (>= s 0))
(check (/ (py:attr diff 'seconds) 60) m (is_float m))

;; The same with the original's two times, to see its numbers.
(set now (py:init 'datetime 'datetime '(2014 12 23 23 14 37 677463)))
(check (py:method now 'strftime '(#b("%Y.%m.%d %H:%M:%S")))
       #"2014.12.23 23:14:37")
(check (py:attr now 'year) 2014)
(check (py:attr now 'microsecond) 677463)
(set later (py:init 'datetime 'datetime '(2014 12 23 23 21 25 714474)))
(set earlier now)
(set diff (py:sub later earlier))
(check (py:str diff) #"0:06:48.037011")
(check (tuple (py:attr diff 'days) (py:attr diff 'seconds)
              (py:attr diff 'microseconds))
       #(0 408 37011))
(check (py:attr diff 'seconds) 408)
(check (/ (py:attr diff 'seconds) 60) 6.8)

;;; ------------------------------------------------------------------
;;; Experimental dotted name support (not experimental here)
;;; ------------------------------------------------------------------

(section "Dotted names")
(check (py:const 'math.pi) 3.141592653589793)
(check (py:func 'datetime.datetime.now) (tuple '$py #"datetime.datetime" _))
(check (py:func 'math.pow '(2 16)) 65536.0)
(check (py:func 'builtins.int '(#b("101010")) '(#(base 2))) 42)
(check (py:init 'collections.UserDict)
       (tuple '$py #"collections.UserDict" _))
(set ud (py:init 'collections.UserDict '() '(#("a" 1) #("b" 2))))
(check ud (tuple '$py #"collections.UserDict" _))
(check (py:attr ud 'data) (map #"a" 1 #"b" 2))

;;; ------------------------------------------------------------------
;;; ErlPort pass-through (pycall: no ErlPort, same call)
;;; ------------------------------------------------------------------

(section "Pass-through")
(check (py:pycall 'datetime 'datetime.now)
       (tuple '$py #"datetime.datetime" _))
(check (py:pycall 'datetime 'datetime '(1923 4 2 0 0 0))
       (tuple '$py #"datetime.datetime" _))
(check (py:str (py:pycall 'datetime 'datetime '(1923 4 2 0 0 0)))
       #"1923-04-02 00:00:00")

;;; ------------------------------------------------------------------
;;; Builtins
;;; ------------------------------------------------------------------

(section "Builtins")
(check (py:init 'builtins 'dict) (tuple '$py #"dict" _))
(check (py:func 'builtins 'int '(#b("101010")) '(#(base 2))) 42)
(check (py:dict) (map))
(check (py:dict '(#("a" 1) #("b" 2))) (map #"a" 1 #"b" 2))
(check (py:int #b("101010") '(#(base 2))) 42)
(check (py:any '(true true false false false true)) 'true)
(check (py:all '(true true false false false true)) 'false)
(check (py:all '(true true true)) 'true)
(check (py:pow 6 42) 481229803398374426442198455156736)
(check (py:round 0.666666667 5) 0.66667)
(check (py:range 7 42) (tuple '$py #"range" _))
(check (py:len (py:range 7 42)) 35)
(check (py:pylist (py:range 7 42)) l (=:= l (lists:seq 7 41)))
(check (erlang:length (py:pylist (py:range 7 42))) 35)

;;; ------------------------------------------------------------------
;;; Operators
;;; ------------------------------------------------------------------

(section "Operators")
(check (py:add 37 5) 42)
(check (py:mul 7 6) 42)
(check (py:sub -108 -150) 42)
(check (py:truediv 462 11) 42.0)
(check (py:floordiv 462 11) 42)
(check (py:gt 7 6) 'true)
(check (py:le 7 6) 'false)
(check (py:eq 42 42) 'true)
(check (py:and- 60 13) 12)
(check (py:or- 60 13) 61)
(check (py:xor 60 13) 49)
(check (py:inv 60) -61)
(check (py:rshift 60 2) 15)
(check (py:lshift 60 2) 240)

;;; ------------------------------------------------------------------
;;; Non-Python additions
;;; ------------------------------------------------------------------

(section "Non-Python additions")
(check (py:pylist) '())
(check (py:pylist '(1 2 3 4)) '(1 2 3 4))
(check (py:dir '()) names (=:= (length names) 29))
(check (lists:last (py:dir '())) '|...|)
(check (py:pdir '()) names (> (length names) 28))
(check (lists:member #"append" (py:pdir '())) 'true)
(check (py:vars ud) (map #"data" (map #"a" 1 #"b" 2)))
(check (py:pvars ud) (map #"data" (map #"a" 1 #"b" 2)))
(check (py:repr now) #"datetime.datetime(2014, 12, 23, 23, 14, 37, 677463)")
(check (py:prepr (list (py:range 3) now))
       (list (tuple '$py #"range" #"range(0, 3)")
             (tuple '$py #"datetime.datetime"
                    #"datetime.datetime(2014, 12, 23, 23, 14, 37, 677463)")))
(check (py:ptype now) #"datetime.datetime")

;;; ------------------------------------------------------------------
;;; Errors, as LFE sees them
;;; ------------------------------------------------------------------

(section "Errors")
(check (try (py:func 'builtins 'int '(#"x"))
         (catch ((tuple 'error (tuple 'python type message _) _)
                 (tuple type message))))
       #(ValueError #"invalid literal for int() with base 10: 'x'"))
(check (try (py:const 'math.tau2)
         (catch ((tuple 'error (tuple 'python type _ _) _) type)))
       'AttributeError)
(check (try (py:len '(1 . 2))
         (catch ((tuple 'error reason _) reason)))
       (tuple 'py_badarg 'improper_list _))

;;; ------------------------------------------------------------------
;;; Executing code in parallel (the original's empty section)
;;; ------------------------------------------------------------------

(section "Parallel")
(check (length (py:on_all_workers 'operator 'add '(1 2)))
       n (== n (length (py:workers))))
(check (lists:usort (lists:map (match-lambda (((tuple _ result)) result))
                               (py:on_all_workers 'operator 'add '(1 2))))
       (list #(ok 3)))
(check (py:scatter 'math 'factorial '((5) (10) (20)))
       (list #(ok 120) #(ok 3628800) #(ok 2432902008176640000)))
(check (py:scatter 'operator 'truediv '((1 2) (1 0)))
       (list #(ok 0.5) (tuple 'error (tuple 'python 'ZeroDivisionError _ _))))

;;; ------------------------------------------------------------------
;;; Distributed Python (the original's empty section): a peer node on
;;; loopback serves Python; handles made there route calls back to it.
;;; ------------------------------------------------------------------

(section "Distributed")
(defun peer-name ()
  (list_to_atom (++ "lfe_py_peer_" (os:getpid))))
(check (case (net_kernel:start
               (list (list_to_atom (++ "lfe_py_test_" (os:getpid))) 'shortnames))
         ((tuple 'ok _) 'ok)
         ((tuple 'error (tuple 'already_started _)) 'ok))
       'ok)
(check (py:start_node (peer-name)) (tuple 'ok node) (is_atom node))
(set peer (car (lists:delete (node) (py:nodes))))
(check (py:func 'operator 'add '(40 2) '() (list (tuple 'node peer))) 42)
(set remote-now (py:func 'datetime 'datetime '(2014 12 23) '()
                         (list (tuple 'node peer) #(return handle))))
(check remote-now (tuple '$py #"datetime.datetime" (tuple '$py_remote n _))
       (== n peer))
(check (py:attr remote-now 'year) 2014)
(check (py:scatter 'operator 'mul '((6 7) (2 21)) (list (tuple 'nodes (list peer))))
       (list #(ok 42) #(ok 42)))
(check (py:stop_node peer) 'ok)

;;; ------------------------------------------------------------------
;;; The verdict.
;;; ------------------------------------------------------------------

(lfe_io:format "~n~w passed, ~w failed~n" (list (get 'passed) (get 'failed)))
(case (get 'failed)
  (0 'ok)
  (_ (erlang:halt 1)))
