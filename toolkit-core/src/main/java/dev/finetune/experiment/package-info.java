/** Running a folder of experiment configs, each in its own JVM, into one results table. */
package dev.finetune.experiment;
