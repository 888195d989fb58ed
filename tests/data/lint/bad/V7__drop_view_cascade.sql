drop view sales.v_legacy cascade;
