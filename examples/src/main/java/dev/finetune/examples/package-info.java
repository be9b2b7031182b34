/** The toolkit used as a library from an application. */
package dev.finetune.examples;
