"""pprof's profile.proto (github.com/google/pprof/proto/profile.proto) as a runtime protobuf descriptor.

Built with the official protobuf library from the published field numbers, independently of hwprof's hand-written
encoder, so decoding an export with it checks the bytes against the schema rather than against our own code.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_T = descriptor_pb2.FieldDescriptorProto
INT64, UINT64, STRING, BOOL, MESSAGE = _T.TYPE_INT64, _T.TYPE_UINT64, _T.TYPE_STRING, _T.TYPE_BOOL, _T.TYPE_MESSAGE
REPEATED, OPTIONAL = _T.LABEL_REPEATED, _T.LABEL_OPTIONAL

MESSAGES = {
    "Profile": [
        ("sample_type", 1, MESSAGE, REPEATED, "ValueType"), ("sample", 2, MESSAGE, REPEATED, "Sample"),
        ("mapping", 3, MESSAGE, REPEATED, "Mapping"), ("location", 4, MESSAGE, REPEATED, "Location"),
        ("function", 5, MESSAGE, REPEATED, "Function"), ("string_table", 6, STRING, REPEATED, None),
        ("drop_frames", 7, INT64, OPTIONAL, None), ("keep_frames", 8, INT64, OPTIONAL, None),
        ("time_nanos", 9, INT64, OPTIONAL, None), ("duration_nanos", 10, INT64, OPTIONAL, None),
        ("period_type", 11, MESSAGE, OPTIONAL, "ValueType"), ("period", 12, INT64, OPTIONAL, None),
        ("comment", 13, INT64, REPEATED, None), ("default_sample_type", 14, INT64, OPTIONAL, None),
    ],
    "ValueType": [("type", 1, INT64, OPTIONAL, None), ("unit", 2, INT64, OPTIONAL, None)],
    "Sample": [("location_id", 1, UINT64, REPEATED, None), ("value", 2, INT64, REPEATED, None),
               ("label", 3, MESSAGE, REPEATED, "Label")],
    "Label": [("key", 1, INT64, OPTIONAL, None), ("str", 2, INT64, OPTIONAL, None), ("num", 3, INT64, OPTIONAL, None),
              ("num_unit", 4, INT64, OPTIONAL, None)],
    "Mapping": [("id", 1, UINT64, OPTIONAL, None), ("memory_start", 2, UINT64, OPTIONAL, None),
                ("memory_limit", 3, UINT64, OPTIONAL, None), ("file_offset", 4, UINT64, OPTIONAL, None),
                ("filename", 5, INT64, OPTIONAL, None), ("build_id", 6, INT64, OPTIONAL, None),
                ("has_functions", 7, BOOL, OPTIONAL, None), ("has_filenames", 8, BOOL, OPTIONAL, None),
                ("has_line_numbers", 9, BOOL, OPTIONAL, None), ("has_inline_frames", 10, BOOL, OPTIONAL, None)],
    "Location": [("id", 1, UINT64, OPTIONAL, None), ("mapping_id", 2, UINT64, OPTIONAL, None),
                 ("address", 3, UINT64, OPTIONAL, None), ("line", 4, MESSAGE, REPEATED, "Line"),
                 ("is_folded", 5, BOOL, OPTIONAL, None)],
    "Line": [("function_id", 1, UINT64, OPTIONAL, None), ("line", 2, INT64, OPTIONAL, None),
             ("column", 3, INT64, OPTIONAL, None)],
    "Function": [("id", 1, UINT64, OPTIONAL, None), ("name", 2, INT64, OPTIONAL, None),
                 ("system_name", 3, INT64, OPTIONAL, None), ("filename", 4, INT64, OPTIONAL, None),
                 ("start_line", 5, INT64, OPTIONAL, None)],
}


def profile_class():
    file = descriptor_pb2.FileDescriptorProto(name="hwprof_test_profile.proto", package="perftools.profiles",
                                              syntax="proto3")
    for name, fields in MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, ftype, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = f".perftools.profiles.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile"))
