#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| image_compliance_scanner_fuzz::gzip_stream(data));
