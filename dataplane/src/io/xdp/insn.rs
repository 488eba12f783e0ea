//! eBPF instructions, written by hand: the XDP program is a few dozen of
//! them, so the build needs neither clang nor a BPF linker. Encoding per
//! the kernel's `Documentation/bpf/standardization/instruction-set.rst`:
//! 8 bytes each (opcode, destination and source registers in one byte,
//! 16-bit offset, 32-bit immediate), little-endian on x86-64 and arm64.

/// A register. `R0` holds return values, `R1`–`R5` arguments (clobbered by
/// calls), `R6`–`R9` survive calls, `R10` is the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R10: Reg = Reg(10);

/// Access widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    B = 0x10,
    H = 0x08,
    W = 0x00,
    DW = 0x18,
}

/// Conditional jumps (64-bit compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ne = 0x50,
}

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_STX: u8 = 0x03;
const CLASS_JMP: u8 = 0x05;
const CLASS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const MODE_ATOMIC: u8 = 0xc0;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const OP_ADD: u8 = 0x00;
const OP_AND: u8 = 0x50;
const OP_MOV: u8 = 0xb0;
const OP_JA: u8 = 0x00;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;
/// `src` of a 64-bit immediate load that names a map by its fd.
const PSEUDO_MAP_FD: u8 = 1;

/// One encoded instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src.0 << 4) | (dst.0 & 0x0f),
            off,
            imm,
        }
    }

    /// The 8 bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// A jump target, resolved when the program is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Writes a program instruction by instruction, with forward jumps to
/// labels.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// Where each label points, once placed.
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of each jump to patch.
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A label to jump to; [`Asm::place`] puts it.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// The next instruction is where `l` points.
    pub fn place(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }

    fn push(&mut self, i: Insn) -> &mut Asm {
        self.insns.push(i);
        self
    }

    /// `dst = imm`.
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(CLASS_ALU64 | OP_MOV | SRC_K, dst, R0, 0, imm))
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.push(Insn::new(CLASS_ALU64 | OP_MOV | SRC_X, dst, src, 0, 0))
    }

    /// `dst += imm`.
    pub fn add_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(CLASS_ALU64 | OP_ADD | SRC_K, dst, R0, 0, imm))
    }

    /// `dst &= imm`.
    pub fn and_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(CLASS_ALU64 | OP_AND | SRC_K, dst, R0, 0, imm))
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Asm {
        self.push(Insn::new(
            CLASS_LDX | MODE_MEM | size as u8,
            dst,
            src,
            off,
            0,
        ))
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(
            CLASS_STX | MODE_MEM | size as u8,
            dst,
            src,
            off,
            0,
        ))
    }

    /// `*(u64 *)(dst + off) += src`, atomically.
    pub fn atomic_add64(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(
            CLASS_STX | MODE_ATOMIC | Size::DW as u8,
            dst,
            src,
            off,
            OP_ADD as i32,
        ))
    }

    /// `dst = map` (the map's fd, turned into its address by the kernel):
    /// two instruction slots.
    pub fn load_map(&mut self, dst: Reg, map_fd: i32) -> &mut Asm {
        self.push(Insn::new(
            CLASS_LD | MODE_IMM | Size::DW as u8,
            dst,
            Reg(PSEUDO_MAP_FD),
            0,
            map_fd,
        ));
        self.push(Insn::new(0, R0, R0, 0, 0))
    }

    /// `if dst <cond> imm goto l`.
    pub fn jump_imm(&mut self, cond: Cond, dst: Reg, imm: i32, l: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), l));
        self.push(Insn::new(CLASS_JMP | cond as u8 | SRC_K, dst, R0, 0, imm))
    }

    /// `if dst <cond> src goto l`.
    pub fn jump_reg(&mut self, cond: Cond, dst: Reg, src: Reg, l: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), l));
        self.push(Insn::new(CLASS_JMP | cond as u8 | SRC_X, dst, src, 0, 0))
    }

    /// `goto l`.
    pub fn jump(&mut self, l: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), l));
        self.push(Insn::new(CLASS_JMP | OP_JA, R0, R0, 0, 0))
    }

    /// Calls kernel helper `id` (arguments in `R1`–`R5`, result in `R0`).
    pub fn call(&mut self, id: i32) -> &mut Asm {
        self.push(Insn::new(CLASS_JMP | OP_CALL, R0, R0, 0, id))
    }

    /// Returns `R0`.
    pub fn exit(&mut self) -> &mut Asm {
        self.push(Insn::new(CLASS_JMP | OP_EXIT, R0, R0, 0, 0))
    }

    /// The instructions with every jump resolved. Panics on a label never
    /// placed or a jump out of range: both are mistakes in this crate's
    /// program, found by its unit tests.
    pub fn finish(mut self) -> Vec<Insn> {
        for &(at, l) in &self.fixups {
            let target = self.labels[l.0].expect("every label is placed");
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).expect("jump in range");
        }
        self.insns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // encodings as `llvm-objdump -d` prints them for clang's output
    #[test]
    fn instructions_encode_as_the_kernel_reads_them() {
        let mut a = Asm::new();
        let end = a.label();
        a.mov(R6, R1) // bf 16 00 00 00 00 00 00
            .load(Size::W, R2, R1, 4) // 61 12 04 00 00 00 00 00
            .load(Size::H, R5, R2, 12) // 69 25 0c 00 00 00 00 00
            .jump_imm(Cond::Ne, R5, 8, end) // 55 05 03 00 08 00 00 00
            .add_imm(R4, 14) // 07 04 00 00 0e 00 00 00
            .jump_reg(Cond::Gt, R4, R3, end) // 2d 34 01 00 00 00 00 00
            .store(Size::W, R10, -4, R5); // 63 5a fc ff 00 00 00 00
        a.place(end);
        a.mov_imm(R0, 2) // b7 00 00 00 02 00 00 00
            .exit(); // 95 00 00 00 00 00 00 00
        let bytes: Vec<[u8; 8]> = a.finish().into_iter().map(Insn::to_bytes).collect();
        assert_eq!(
            bytes,
            [
                [0xbf, 0x16, 0, 0, 0, 0, 0, 0],
                [0x61, 0x12, 4, 0, 0, 0, 0, 0],
                [0x69, 0x25, 12, 0, 0, 0, 0, 0],
                [0x55, 0x05, 3, 0, 8, 0, 0, 0],
                [0x07, 0x04, 0, 0, 14, 0, 0, 0],
                [0x2d, 0x34, 1, 0, 0, 0, 0, 0],
                [0x63, 0x5a, 0xfc, 0xff, 0, 0, 0, 0],
                [0xb7, 0x00, 0, 0, 2, 0, 0, 0],
                [0x95, 0, 0, 0, 0, 0, 0, 0],
            ]
        );
    }

    #[test]
    fn a_map_load_takes_two_slots_and_atomics_say_add() {
        let mut a = Asm::new();
        a.load_map(R1, 7).atomic_add64(R0, 0, R1);
        let bytes: Vec<[u8; 8]> = a.finish().into_iter().map(Insn::to_bytes).collect();
        assert_eq!(
            bytes,
            [
                [0x18, 0x11, 0, 0, 7, 0, 0, 0],
                [0, 0, 0, 0, 0, 0, 0, 0],
                [0xdb, 0x10, 0, 0, 0, 0, 0, 0],
            ]
        );
    }
}
