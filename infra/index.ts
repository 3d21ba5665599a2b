// Pulumi entry point (package.json "main"). The program itself is in program.ts so the offline plan and the tests
// can run exactly the same code.
import { runProgram } from "./program";

export = runProgram;
