//! The sandboxed Lua state every script runs in, and the limits that keep a script from taking
//! the worker down.
//!
//! Envoy gives scripts the whole standard library; wasp's issue asks for no file, OS or module
//! access, so the state has only `coroutine`, `table`, `string`, `math`, `utf8` / `bit` and a
//! reduced `os` (`time`, `clock`, `date`, `difftime`). Blocked names fail with a message that
//! says so rather than "attempt to index a nil value".

use std::cell::Cell;
use std::rc::Rc;

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, VmState};

/// How often (in VM instructions) the budget hook runs: rare enough to cost nothing
/// measurable, often enough that a runaway script is stopped within microseconds.
const HOOK_PERIOD: u32 = 1000;

/// Lua code run once per state, before the memory limit applies.
const SANDBOX_LUA: &str = r#"
local error, type, tostring, setmetatable = error, type, tostring, setmetatable
local function sandbox_error(what)
  error(what .. " is not available in the Lua sandbox", 3)
end
local function deny(what)
  return function() sandbox_error(what) end
end

-- Text chunks only: binary chunks can crash the VM.
local raw_load = load
load = function(chunk, name, mode, env)
  if mode ~= nil and mode ~= "t" then
    error("load: only text chunks are allowed in the Lua sandbox", 2)
  end
  if type(chunk) == "string" and chunk:byte(1) == 27 then
    error("load: binary chunks are not allowed in the Lua sandbox", 2)
  end
  return raw_load(chunk, name, "t", env)
end
if loadstring ~= nil then
  loadstring = function(chunk, name) return load(chunk, name) end
end
-- Lua 5.1 names scripts written for Envoy's LuaJIT commonly use.
if unpack == nil then unpack = table.unpack end
string.dump = nil

dofile = deny("dofile")
loadfile = deny("loadfile")
require = deny("require")

local raw_collectgarbage = collectgarbage
local gc_allowed = { collect = true, count = true, step = true, isrunning = true }
collectgarbage = function(opt, ...)
  opt = opt or "collect"
  if not gc_allowed[opt] then
    error("collectgarbage('" .. tostring(opt) .. "') is not allowed in the Lua sandbox", 2)
  end
  return raw_collectgarbage(opt, ...)
end

local raw_os = os
os = setmetatable({
  time = raw_os.time, clock = raw_os.clock, date = raw_os.date, difftime = raw_os.difftime,
}, { __index = function(_, k) sandbox_error("os." .. tostring(k)) end })

local blocked = { io = true, package = true, debug = true, ffi = true, jit = true }
setmetatable(_G, { __index = function(_, k)
  if blocked[k] then sandbox_error(k) end
  return nil
end })
"#;

/// Resource limits of one Lua state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory the state may allocate in total (all streams of the worker); 0 = unlimited.
    /// An allocation past it fails the script that made it.
    pub memory_bytes: usize,
    /// VM instructions one call into the script may run (a phase, a resume after a callout,
    /// the script's top level), checked every 1000 instructions. Time spent inside one
    /// library function (`string.rep` of a huge string) is not counted; the memory limit
    /// bounds those. 0 = unlimited (no hook at all, see the crate README for its cost).
    pub instructions_per_call: u64,
}

impl Default for Limits {
    /// 64 MiB and 10 million instructions (tens of milliseconds): far above what header and
    /// body filters use, low enough that a runaway script cannot stall a worker for long.
    fn default() -> Limits {
        Limits {
            memory_bytes: 64 << 20,
            instructions_per_call: 10_000_000,
        }
    }
}

/// A fresh state with the sandboxed standard library. `interpreted_only` turns LuaJIT's JIT
/// compiler off: compiled traces never run the instruction hook, so a loop that got compiled
/// would escape the instruction budget (Lua 5.4 has no JIT and ignores this).
pub(crate) fn new_state(interpreted_only: bool) -> mlua::Result<Lua> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS;
    // LuaJIT has `coroutine` in its base library.
    #[cfg(feature = "luajit")]
    let libs = libs | StdLib::BIT | StdLib::JIT;
    #[cfg(not(feature = "luajit"))]
    let libs = libs | StdLib::COROUTINE | StdLib::UTF8;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    if cfg!(feature = "luajit") {
        let jit: mlua::Table = lua.globals().get("jit")?;
        if interpreted_only {
            jit.get::<mlua::Function>("off")?.call::<()>(())?;
        }
        lua.globals().raw_set("jit", mlua::Value::Nil)?;
    }
    lua.load(SANDBOX_LUA).set_name("=sandbox").exec()?;
    #[cfg(feature = "luajit")]
    install_pairs(&lua)?;
    Ok(lua)
}

/// LuaJIT as built here (without 5.2 compatibility) ignores `__pairs`, which the header and
/// metadata objects use for iteration as in Envoy's LuaJIT: `pairs` honours it for userdata.
/// (mlua hides userdata metatables from `getmetatable`, so this is done from Rust.)
#[cfg(feature = "luajit")]
fn install_pairs(lua: &Lua) -> mlua::Result<()> {
    use mlua::{Function, MultiValue, Value};
    let raw_pairs: Function = lua.globals().get("pairs")?;
    let pairs = lua.create_function(move |_, value: Value| {
        if let Value::UserData(ud) = &value
            && let Ok(mt) = ud.metatable()
            && let Ok(Some(meta_pairs)) = mt.get::<Option<Function>>("__pairs")
        {
            return meta_pairs.call::<MultiValue>(value.clone());
        }
        raw_pairs.call::<MultiValue>(value)
    })?;
    lua.globals().raw_set("pairs", pairs)
}

/// The instruction budget of one call into Lua, shared with the hook.
#[derive(Debug)]
pub(crate) struct Budget {
    per_call: u64,
    remaining: Cell<i64>,
    /// How many times the hook found the budget spent during the current call.
    exceeded: Cell<u32>,
    /// Line the script was at when the budget ran out.
    line: Cell<Option<usize>>,
}

impl Budget {
    /// Starts a new call with a full budget.
    pub fn reset(&self) {
        self.remaining
            .set(i64::try_from(self.per_call).unwrap_or(i64::MAX));
        self.exceeded.set(0);
        self.line.set(None);
    }

    /// `Some(line)` when the current call ran out of instructions.
    pub fn exceeded(&self) -> Option<Option<usize>> {
        (self.exceeded.get() > 0).then(|| self.line.get())
    }

    pub fn per_call(&self) -> u64 {
        self.per_call
    }
}

/// Installs the memory limit and the instruction-budget hook (inherited by every coroutine
/// created afterwards).
pub(crate) fn apply_limits(
    lua: &Lua,
    memory_bytes: usize,
    instructions_per_call: u64,
) -> mlua::Result<Rc<Budget>> {
    let budget = Rc::new(Budget {
        per_call: instructions_per_call,
        remaining: Cell::new(0),
        exceeded: Cell::new(0),
        line: Cell::new(None),
    });
    budget.reset();
    if memory_bytes > 0 {
        lua.set_memory_limit(memory_bytes)?;
    }
    if instructions_per_call == 0 {
        return Ok(budget);
    }
    let period = u32::try_from(instructions_per_call.clamp(1, u64::from(HOOK_PERIOD)))
        .unwrap_or(HOOK_PERIOD);
    let hook_budget = budget.clone();
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(period),
        move |_lua, debug| {
            let b = &hook_budget;
            b.remaining.set(b.remaining.get() - i64::from(period));
            if b.remaining.get() >= 0 {
                return Ok(VmState::Continue);
            }
            let times = b.exceeded.get() + 1;
            b.exceeded.set(times);
            if times == 1 {
                b.line.set(debug.current_line());
            }
            // An error can be caught by `pcall`; a yield cannot (Lua 5.4 yields through
            // pcall), but is only possible where the coroutine is yieldable. Alternate so that
            // a script that swallows the error is still stopped at the next yieldable point.
            if cfg!(feature = "luajit") || times % 2 == 1 {
                Err(mlua::Error::runtime("instruction limit exceeded"))
            } else {
                Ok(VmState::Yield)
            }
        },
    )?;
    #[cfg(feature = "luajit")]
    stop_pcall_from_swallowing(lua, &budget)?;
    Ok(budget)
}

/// LuaJIT cannot yield from a hook, so the budget error could be caught by `pcall` forever:
/// `pcall` / `xpcall` re-raise it once the budget is spent.
#[cfg(feature = "luajit")]
fn stop_pcall_from_swallowing(lua: &Lua, budget: &Rc<Budget>) -> mlua::Result<()> {
    let b = budget.clone();
    let spent = lua.create_function(move |_, ()| Ok(b.exceeded.get() > 0))?;
    lua.load(
        r#"
        local spent, raw_pcall, raw_xpcall, error = ...
        local function check(ok, ...)
          if not ok and spent() then error("instruction limit exceeded", 0) end
          return ok, ...
        end
        pcall = function(...) return check(raw_pcall(...)) end
        xpcall = function(...) return check(raw_xpcall(...)) end
        "#,
    )
    .set_name("=sandbox")
    .call::<()>((
        spent,
        lua.globals().get::<mlua::Function>("pcall")?,
        lua.globals().get::<mlua::Function>("xpcall")?,
        lua.globals().get::<mlua::Function>("error")?,
    ))
}
