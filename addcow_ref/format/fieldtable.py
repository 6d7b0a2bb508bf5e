# ruff: noqa: E501  (generated: one literal per line, as long as the schema's text)
"""The header field tables, generated from ``schema.py`` by ``tablegen.py``: do not edit.

The same :class:`~addcow_ref.format.layout.FieldInfo` records as ``layout.field_table`` derives
from the schema's structs (with each ``checks`` expression compiled to a Python function), so
reading a header needs no construct. Regenerate with ``python -m addcow_ref.format.tablegen``;
``tests/addcow_ref/test_fieldtable.py`` fails while this file is stale.
"""

from __future__ import annotations

from addcow_ref.format.layout import FieldInfo, HeaderTable

__all__ = ['HEADER_V1', 'HEADER_V2']

HEADER_V2 = HeaderTable('HEADER_V2', (
    FieldInfo(
        name='magic', offset=0, size=8, ctype='u8[8]',
        doc='File signature, identical in v1 and v2.',
        rules=('HDR-MAGIC',),
        constraint='41 44 44 5f 43 4f 57 ff (``ADD_COW\\xff``)',
        default=b'ADD_COW\xff', subcon=None,
        checks={
            'HDR-MAGIC': lambda v: (v['magic'] == b'ADD_COW\xff'),
        }),
    FieldInfo(
        name='version', offset=8, size=4, ctype='uint32be',
        doc='Format version.',
        rules=('HDR-VERSION',),
        constraint='2',
        default=2, subcon=None,
        checks={
            'HDR-VERSION': lambda v: (v['version'] == 2),
        }),
    FieldInfo(
        name='header_length', offset=12, size=4, ctype='uint32be',
        doc='Size of the fixed header in bytes; the name area starts here. Readers skip fields they do not know between byte 128 and header_length.',
        rules=('HDR-LENGTH-MIN', 'HDR-LENGTH-BOUND', 'READ-HEADER-EXTENSION', 'HDR-LENGTH-MULTIPLE', 'HDR-EXTENSION-KEEP'),
        constraint='>= 128 and <= bitmap_offset',
        default=128, subcon=None,
        checks={
            'HDR-LENGTH-MIN': lambda v: (v['header_length'] >= 128),
        }),
    FieldInfo(
        name='incompatible_features', offset=16, size=8, ctype='uint64be',
        doc='Feature bits a reader must understand; unknown bit set: refuse the image.',
        rules=('FEAT-INCOMPAT-UNKNOWN',),
        constraint='no unknown bit (none defined in 2.0)',
        default=0, subcon=None,
        checks={}),
    FieldInfo(
        name='compatible_features', offset=24, size=8, ctype='uint64be',
        doc='Feature bits a reader may ignore. Bit 0: all_allocated.',
        rules=('FEAT-COMPAT-UNKNOWN', 'FEAT-ALL-ALLOCATED', 'FEAT-ALL-ALLOCATED-SET', 'FEAT-COMPAT-KEEP', 'READ-BACKING-SKIP'),
        constraint='bit 0 all_allocated',
        default=0, subcon=None,
        checks={}),
    FieldInfo(
        name='autoclear_features', offset=32, size=8, ctype='uint64be',
        doc='Feature bits a writer that does not know them must clear when it modifies the image.',
        rules=('FEAT-AUTOCLEAR-UNKNOWN', 'FEAT-AUTOCLEAR-DURABLE'),
        constraint='none defined in 2.0',
        default=0, subcon=None,
        checks={}),
    FieldInfo(
        name='virtual_size', offset=40, size=8, ctype='uint64be',
        doc='Guest disk size in bytes.',
        rules=('HDR-VIRTUAL-SIZE-ALIGN', 'HDR-VIRTUAL-SIZE-MAX', 'IMG-SIZE', 'IMG-LENGTH'),
        constraint='multiple of 512, below 2^63',
        default=0, subcon=None,
        checks={
            'HDR-VIRTUAL-SIZE-ALIGN': lambda v: ((v['virtual_size'] % 512) == 0),
            'HDR-VIRTUAL-SIZE-MAX': lambda v: (v['virtual_size'] <= 9223372036854775807),
        }),
    FieldInfo(
        name='bitmap_offset', offset=48, size=8, ctype='uint64be',
        doc='Offset of the COW bitmap; the name area ends here.',
        rules=('HDR-BITMAP-OFFSET-ALIGN', 'HDR-BITMAP-OFFSET-MIN'),
        constraint='multiple of 4096, >= 4096 (default 4096)',
        default=4096, subcon=None,
        checks={
            'HDR-BITMAP-OFFSET-ALIGN': lambda v: ((v['bitmap_offset'] % 4096) == 0),
            'HDR-BITMAP-OFFSET-MIN': lambda v: (v['bitmap_offset'] >= 4096),
        }),
    FieldInfo(
        name='cluster_bits', offset=56, size=4, ctype='uint32be',
        doc='log2 of the cluster size.',
        rules=('HDR-CLUSTER-BITS',),
        constraint='9..21 (default 16: 64 KiB)',
        default=16, subcon=None,
        checks={
            'HDR-CLUSTER-BITS': lambda v: ((v['cluster_bits'] >= 9) & (v['cluster_bits'] <= 21)),
        }),
    FieldInfo(
        name='reserved1', offset=60, size=4, ctype='u8[4]',
        doc='Reserved.',
        rules=('HDR-RESERVED',),
        constraint='all zero',
        default=bytes(4), subcon=None,
        checks={
            'HDR-RESERVED': lambda v: (v['reserved1'] == bytes(4)),
        }),
    FieldInfo(
        name='image_name_offset', offset=64, size=4, ctype='uint32be',
        doc="Offset of the raw image file's name (mandatory).",
        rules=('NAME-BOUNDS', 'NAME-OVERLAP', 'NAME-NO-NUL', 'NAME-CONFINED', 'IMG-EXISTS', 'IMG-FILE-TYPE', 'IMG-IDENTITY'),
        constraint='inside the name area',
        default=128, subcon=None,
        checks={}),
    FieldInfo(
        name='image_name_length', offset=68, size=4, ctype='uint32be',
        doc="Length of the raw image file's name in bytes.",
        rules=('NAME-IMAGE-REQUIRED',),
        constraint='>= 1',
        default=0, subcon=None,
        checks={
            'NAME-IMAGE-REQUIRED': lambda v: (v['image_name_length'] >= 1),
        }),
    FieldInfo(
        name='backing_name_offset', offset=72, size=4, ctype='uint32be',
        doc="Offset of the backing file's name; 0 with length 0: no backing file.",
        rules=('NAME-BOUNDS', 'NAME-OVERLAP', 'NAME-BACKING-PAIR', 'NAME-NO-NUL', 'NAME-CONFINED', 'BACK-EXISTS', 'BACK-LOOP', 'BACK-DEPTH'),
        constraint='inside the name area, or 0',
        default=0, subcon=None,
        checks={}),
    FieldInfo(
        name='backing_name_length', offset=76, size=4, ctype='uint32be',
        doc="Length of the backing file's name in bytes.",
        rules=('NAME-BACKING-PAIR',),
        constraint='0 if and only if the offset is 0',
        default=0, subcon=None,
        checks={}),
    FieldInfo(
        name='image_format', offset=80, size=16, ctype='u8[16]',
        doc='Format of the image file: ASCII, NUL-padded.',
        rules=('FMT-IMAGE', 'FMT-PADDING', 'FMT-CASE'),
        constraint='``raw``',
        default=b'raw\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', subcon=None,
        checks={}),
    FieldInfo(
        name='backing_format', offset=96, size=16, ctype='u8[16]',
        doc='Format of the backing file: ASCII, NUL-padded; empty if and only if there is none.',
        rules=('FMT-BACKING-PRESENCE', 'FMT-BACKING-KNOWN', 'FMT-PADDING', 'FMT-CASE', 'BACK-FORMAT', 'READ-NO-PROBE'),
        constraint='``raw``, ``add-cow`` or empty',
        default=bytes(16), subcon=None,
        checks={}),
    FieldInfo(
        name='reserved2', offset=112, size=16, ctype='u8[16]',
        doc='Reserved.',
        rules=('HDR-RESERVED',),
        constraint='all zero',
        default=bytes(16), subcon=None,
        checks={
            'HDR-RESERVED': lambda v: (v['reserved2'] == bytes(16)),
        }),
))

HEADER_V1 = HeaderTable('HEADER_V1', (
    FieldInfo(
        name='magic', offset=0, size=8, ctype='u8[8]',
        doc='File signature, identical in v1 and v2.',
        rules=('HDR-MAGIC',),
        constraint='41 44 44 5f 43 4f 57 ff (``ADD_COW\\xff``)',
        default=b'ADD_COW\xff', subcon=None,
        checks={
            'HDR-MAGIC': lambda v: (v['magic'] == b'ADD_COW\xff'),
        }),
    FieldInfo(
        name='version', offset=8, size=4, ctype='uint32be',
        doc='Format version.',
        rules=('HDR-VERSION',),
        constraint='1',
        default=1, subcon=None,
        checks={
            'HDR-VERSION': lambda v: (v['version'] == 1),
        }),
    FieldInfo(
        name='backing_file', offset=12, size=1024, ctype='u8[1024]',
        doc='Backing file name, NUL-padded; empty: no backing file.',
        rules=('V1-NAME-PADDING',),
        constraint='at most 1023 bytes, NUL-padded',
        default=bytes(1024), subcon=None,
        checks={}),
    FieldInfo(
        name='image_file', offset=1036, size=1024, ctype='u8[1024]',
        doc='Raw image file name, NUL-padded.',
        rules=('V1-NAME-PADDING', 'V1-IMAGE-NAME'),
        constraint='1 to 1023 bytes, NUL-padded',
        default=bytes(1024), subcon=None,
        checks={}),
    FieldInfo(
        name='reserved', offset=2060, size=500, ctype='u8[500]',
        doc='Reserved; pads the header to 2560 bytes.',
        rules=('V1-RESERVED',),
        constraint='all zero',
        default=bytes(500), subcon=None,
        checks={
            'V1-RESERVED': lambda v: (v['reserved'] == bytes(500)),
        }),
))
