/** The finetune command line (picocli): parses arguments, prints, and maps errors to exit codes; all behaviour is in toolkit-core. */
package dev.finetune.cli;
