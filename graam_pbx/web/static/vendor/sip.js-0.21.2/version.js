export const LIBRARY_VERSION = "0.21.1";
